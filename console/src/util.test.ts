import { describe, expect, it } from 'vitest';
import dayjs from 'dayjs';
import { clean, dateRange, invitationToken, placeholders, signerSpec } from './util';

const T = 'ab'.repeat(32);

describe('the screens\' helpers', () => {
  it('read the invitation token from the fragment only, and only a well-formed one', () => {
    expect(invitationToken(`#token=${T}`)).toBe(T);
    expect(invitationToken(`#${T}`)).toBe(T);
    expect(invitationToken(`#token=${T.toUpperCase()}`)).toBeUndefined();
    expect(invitationToken(`#token=${T}00`)).toBeUndefined();
    expect(invitationToken('#token=')).toBeUndefined();
    expect(invitationToken('')).toBeUndefined();
    expect(invitationToken('#token=<script>')).toBeUndefined();
  });
  it('turn the 发起邀约 rows into the API\'s signers', () => {
    expect(signerSpec({ kind: 'own', username: ' alice ' })).toBe('alice');
    expect(signerSpec({ kind: 'other', username: 'bob', organisation: 'bank-b' })).toEqual({ username: 'bob', organisation: 'bank-b' });
    expect(signerSpec({ kind: 'email', contact: ' w@example.com ' })).toEqual({ email: 'w@example.com' });
    expect(signerSpec({ kind: 'phone', contact: '+86 138-0000-0000' })).toEqual({ phone: '+8613800000000' });
  });
  it('find a template\'s placeholders as the server does', () => {
    expect(placeholders('出租人{{lessor}}将房屋出租给{{ 承租人 }}，{{lessor}} {{bad name}} {{}} {{rent}}')).toEqual(['lessor', '承租人', 'rent']);
  });
  it('send no empty filter, and dates as the API takes them', () => {
    expect(clean({ a: '', b: undefined, c: null, d: 0, e: 'x' })).toEqual({ d: 0, e: 'x' });
    expect(dateRange([dayjs('2026-01-02T23:00:00'), null])).toEqual({ from: '2026-01-02', to: undefined });
    expect(dateRange(null)).toEqual({ from: undefined, to: undefined });
  });
});
