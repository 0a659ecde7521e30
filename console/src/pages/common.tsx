import { Tag } from 'antd';
import { statusLabel, useI18n } from '../i18n';

const COLORS: Record<string, string> = {
  saved: 'default',
  submitted: 'processing',
  approved: 'cyan',
  on_chain: 'success',
  anchored: 'green',
  rejected: 'error',
  refused: 'error',
  signing: 'processing',
  awaiting_review: 'warning',
  pending: 'warning',
  in_review: 'processing',
  certified: 'success',
};

export function StatusTag({ status }: { status: string }) {
  const { lang } = useI18n();
  return (
    <Tag color={COLORS[status] ?? 'default'} data-status={status}>
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
