// Pure helpers of the screens (no React): unit-tested in util.test.ts.
import type { Dayjs } from 'dayjs';
import type { Schemas } from './api/client';

/** The token of an invitation link: `/invitation#token=<64 hex>` (the API's link),
 * or `/invite#<64 hex>`. Only the fragment is read: a browser never sends it. */
export function invitationToken(hash: string): string | undefined {
  const h = hash.replace(/^#/, '');
  const v = new URLSearchParams(h).get('token') ?? h;
  return /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}

export type SignerKind = 'own' | 'other' | 'email' | 'phone';
export interface SignerRow {
  kind: SignerKind;
  username?: string;
  organisation?: string;
  contact?: string;
}

/** A signer row of the 发起邀约 form as the API's signer: a username of the
 * initiator's bank, a user of another organisation, or an outside party to invite. */
export function signerSpec(r: SignerRow): Schemas['SignerSpec'] {
  switch (r.kind) {
    case 'other':
      return { username: r.username?.trim(), organisation: r.organisation?.trim() };
    case 'email':
      return { email: r.contact?.trim() };
    case 'phone':
      return { phone: r.contact?.replace(/[\s-]/g, '') };
    default:
      return r.username?.trim() ?? '';
  }
}

/** The placeholders `{{name}}` of a contract template, as the server finds them
 * (docs/workflow-api.md "Contract templates"): shown while the administrator types. */
export function placeholders(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/\{\{\s*([\p{L}\p{N}_.-]{1,64})\s*\}\}/gu)) out.add(m[1]);
  return [...out];
}

/** A query without its empty values (so `?number=` is never sent). */
export function clean<T extends object>(q: T): Partial<T> {
  return Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined && v !== null && v !== '')) as Partial<T>;
}

/** A date range of the search forms as the API's `from`/`to` (dates in the
 * deployment's zone; `to` includes that whole day). */
export function dateRange(r: [Dayjs | null, Dayjs | null] | null | undefined): { from?: string; to?: string } {
  return { from: r?.[0]?.format('YYYY-MM-DD'), to: r?.[1]?.format('YYYY-MM-DD') };
}
