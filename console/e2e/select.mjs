// Shared by the flows (not a flow itself): picking an option of an Ant Design Select.

/**
 * Opens the Select whose field id is `id` (inside `scope`) and clicks the
 * option titled `title` in that Select's own dropdown: the one holding its
 * listbox, `#<id>_list`. Not "any visible dropdown": the previous Select's
 * may still be on screen while its closing animation runs, and may hold an
 * option of the same title.
 */
export async function choose(page, scope, id, title) {
  await scope.locator(`[id="${id}"]`).click();
  const own = page.locator('.ant-select-dropdown').filter({ has: page.locator(`[id="${id}_list"]`) });
  await own.getByTitle(title, { exact: true }).click();
}
