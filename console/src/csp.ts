// The Content-Security-Policy allows <style> elements only with the nonce the
// server put in index.html (workflow/src/console.rs): markup injected into the
// page cannot add styles. Ant Design passes the nonce on (ConfigProvider csp) for
// its CSS-variable blocks, but some of its helpers (the scrollbar measurement of
// @rc-component/util, used by tables and selects) insert <style> elements without
// one; they are created by this bundle's own code, so they get the nonce here,
// as they are inserted (the CSP is checked at insertion).

export function cspNonce(): string | undefined {
  const v = document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content');
  return v && v !== '__CSP_NONCE__' ? v : undefined;
}

/** Give every <style> element this bundle inserts the page's nonce. */
export function stampStyleNonce(nonce = cspNonce()): void {
  if (!nonce) return;
  const stamp = (node: Node) => {
    if (node instanceof HTMLStyleElement && !node.nonce) node.nonce = nonce;
  };
  // Kept and called with their node as `this` (.call below).
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const append = Node.prototype.appendChild;
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const insert = Node.prototype.insertBefore;
  Node.prototype.appendChild = function <T extends Node>(this: Node, node: T): T {
    stamp(node);
    return append.call(this, node) as T;
  };
  Node.prototype.insertBefore = function <T extends Node>(this: Node, node: T, child: Node | null): T {
    stamp(node);
    return insert.call(this, node, child) as T;
  };
}
