import { Tag } from 'antd';
import { statusLabel, useI18n } from '../i18n';

/** Status families, each with colours that meet WCAG AA (antd's preset tag
 * colours do not: e.g. #52c41a on #f6ffed is 2.4:1). */
const FAMILY: Record<string, string> = {
  saved: 'plain',
  submitted: 'info',
  approved: 'info',
  on_chain: 'ok',
  anchored: 'ok',
  rejected: 'error',
  refused: 'error',
  signing: 'info',
  awaiting_review: 'warn',
  pending: 'warn',
  in_review: 'info',
  certified: 'ok',
};

export function StatusTag({ status }: { status: string }) {
  const { lang } = useI18n();
  return (
    <Tag className={`anchord-status anchord-status-${FAMILY[status] ?? 'plain'}`} data-status={status}>
      {statusLabel(lang, status)}
    </Tag>
  );
}

export function Mono({ children }: { children: React.ReactNode }) {
  return <span className="anchord-mono">{children}</span>;
}

/** Bytes in a human unit. */
export function bytes(n: number | null | undefined): string {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
