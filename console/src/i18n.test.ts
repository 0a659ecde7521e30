import { describe, expect, it } from 'vitest';
import { dictionaries, localTime, statusLabel, translate } from './i18n';

describe('i18n', () => {
  it('has every key in both languages, none empty', () => {
    const zh = Object.keys(dictionaries.zh).sort();
    const en = Object.keys(dictionaries.en).sort();
    expect(en).toEqual(zh);
    for (const l of ['zh', 'en'] as const)
      for (const [k, v] of Object.entries(dictionaries[l])) expect(v, `${l}.${k}`).not.toBe('');
  });
  it('speaks Simplified Chinese by default labels', () => {
    expect(translate('zh', 'login')).toBe('登录');
    expect(statusLabel('zh', 'on_chain')).toBe('已上链');
    expect(statusLabel('en', 'on_chain')).toBe('On chain');
    expect(statusLabel('zh', 'something_new')).toBe('something_new');
  });
  it('shows times in local time and passes bad input through', () => {
    expect(localTime('zh', '')).toBe('');
    expect(localTime('zh', 'not a time')).toBe('not a time');
    const s = localTime('en', '2026-01-02T03:04:05Z');
    expect(s).toMatch(/2026/);
  });
});
