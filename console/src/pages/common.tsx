import { type ReactNode, useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, DatePicker, Form, Input, Modal, Space, Tag, message } from 'antd';
import { errorText, nextAfter } from '../api/client';
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
  signed: 'ok',
  awaiting_signature: 'warn',
};

export function StatusTag({ status }: { status: string }) {
  const { lang } = useI18n();
  return (
    <Tag className={`anchord-status anchord-status-${FAMILY[status] ?? 'plain'}`} data-status={status}>
      {statusLabel(lang, status)}
    </Tag>
  );
}

export function Mono({ children }: { children: ReactNode }) {
  return <span className="anchord-mono">{children}</span>;
}

/** Bytes in a human unit. */
export function bytes(n: number | null | undefined): string {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The readable text of a failure (an ApiFailure's body, or the error). */
export function failText(e: unknown): string {
  return errorText((e as { body?: unknown }).body ?? e);
}

/** Show a failure as a message. */
export function fail(e: unknown): void {
  void message.error(failText(e));
}


/**
 * The one form-in-a-dialog of the console (creating and editing users,
 * organisations, products, fields, webhooks, contract types; reasons): a vertical
 * form, its fields as children, one submit button. `onSubmit` does the work; the
 * dialog closes when it succeeds and shows the server's message when it fails.
 */
export function FormModal<T extends object>({
  open,
  title,
  onClose,
  onSubmit,
  initialValues,
  submitText,
  danger,
  children,
}: {
  open: boolean;
  title: ReactNode;
  onClose: () => void;
  onSubmit: (v: T) => Promise<unknown>;
  initialValues?: Partial<T>;
  submitText?: string;
  danger?: boolean;
  children: ReactNode;
}) {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const finish = async (v: T) => {
    setBusy(true);
    try {
      await onSubmit(v);
      onClose();
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal open={open} title={title} footer={null} onCancel={onClose} destroyOnHidden>
      <Form<T> layout="vertical" onFinish={finish} initialValues={initialValues}>
        {children}
        <Button type="primary" danger={danger} htmlType="submit" loading={busy}>
          {submitText ?? t('save')}
        </Button>
      </Form>
    </Modal>
  );
}

/** A card with a title and, for those who may, a create button. */
export function ListCard({ title, createText, onCreate, children }: { title: ReactNode; createText?: string; onCreate?: () => void; children: ReactNode }) {
  return (
    <Card
      title={title}
      extra={
        onCreate && (
          <Button type="primary" onClick={onCreate}>
            {createText}
          </Button>
        )
      }
    >
      {children}
    </Card>
  );
}

type Answer<R> = { data?: R; error?: unknown; response: Response };

/**
 * A paged list ([Paging] of docs/workflow-api.md): `fetchPage(query, after)` asks
 * for one page (it must be stable: defined outside the component or memoised);
 * `search(q)` starts again from the first page; `pager` is the first/next buttons.
 */
export function usePaged<R, Q>(fetchPage: (q: Q, after: number | undefined) => Promise<Answer<R[]>>, initial: Q) {
  const { t } = useI18n();
  const [query, setQuery] = useState<Q>(initial);
  const [after, setAfter] = useState<number>();
  const [next, setNext] = useState<number>();
  const [rows, setRows] = useState<R[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string>();
  const reload = useCallback(async () => {
    setLoading(true);
    try {
      const r = await fetchPage(query, after);
      if (r.data && r.response.ok) {
        setRows(r.data);
        setNext(nextAfter(r.response));
        setError(undefined);
      } else {
        setRows([]);
        setNext(undefined);
        setError(errorText(r.error));
      }
    } catch (e) {
      setError(failText(e));
    } finally {
      setLoading(false);
    }
  }, [fetchPage, query, after]);
  useEffect(() => {
    void reload();
  }, [reload]);
  const search = useCallback((q: Q) => {
    setAfter(undefined);
    setQuery(q);
  }, []);
  const pager = (
    <Space style={{ marginTop: 16 }}>
      <Button disabled={after === undefined} onClick={() => setAfter(undefined)}>
        {t('firstPage')}
      </Button>
      <Button disabled={next === undefined} onClick={() => setAfter(next)}>
        {t('nextPage')}
      </Button>
    </Space>
  );
  const alert = error ? <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} /> : null;
  return { rows, loading, error, alert, reload, search, query, pager };
}

/** The filters every search form has: the full hash (64 hex digits, any case) and a
 * date range, then the search button. */
export function HashFilter() {
  const { t } = useI18n();
  return (
    <Form.Item name="hash" label={t('hash')} rules={[{ pattern: /^[0-9a-fA-F]{64}$/, message: t('hashRule') }]}>
      <Input allowClear style={{ width: 220 }} />
    </Form.Item>
  );
}

export function DatesAndSearch({ label }: { label?: string }) {
  const { t } = useI18n();
  return (
    <>
      <Form.Item name="dates" label={label ?? t('dateRange')}>
        <DatePicker.RangePicker allowEmpty={[true, true]} />
      </Form.Item>
      <Button type="primary" htmlType="submit">
        {t('search')}
      </Button>
    </>
  );
}

/** A user's name and e-mail address (new user, edit user). */
export function ContactFields() {
  const { t } = useI18n();
  return (
    <>
      <Form.Item name="display_name" label={t('displayName')} rules={[{ max: 100 }]}>
        <Input />
      </Form.Item>
      <Form.Item name="email" label={t('email')} rules={[{ type: 'email', max: 254 }]}>
        <Input type="email" />
      </Form.Item>
    </>
  );
}

/** A new password and its confirmation (registration, password change). */
export function NewPasswordFields({ name, label }: { name: string; label: string }) {
  const { t } = useI18n();
  return (
    <>
      <Form.Item name={name} label={label} rules={[{ required: true, min: 8, max: 256 }]} extra={t('passwordRule')}>
        <Input.Password autoComplete="new-password" />
      </Form.Item>
      <Form.Item
        name="confirm"
        label={t('passwordConfirm')}
        dependencies={[name]}
        rules={[
          { required: true },
          ({ getFieldValue }) => ({
            validator: (_, v) => (v === getFieldValue(name) ? Promise.resolve() : Promise.reject(new Error(t('passwordMismatch')))),
          }),
        ]}
      >
        <Input.Password autoComplete="new-password" />
      </Form.Item>
    </>
  );
}
