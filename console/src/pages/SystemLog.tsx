import { useCallback, useEffect, useState } from 'react';
import { Alert, Card, Form, InputNumber, Select, Space, Button, Table } from 'antd';
import { api, errorText, type Schemas } from '../api/client';
import { localTime, type Key, useI18n } from '../i18n';
import { clean } from '../util';

type E = Schemas['ChainEventJson'];
const KINDS = ['block_sealed', 'checkpoint_signed', 'checkpoint_final', 'anchor_confirmed', 'anchor_failed'];

/** 系统日志: the chain's events (GET /v1/system/events): blocks sealed, checkpoints
 * signed and final, anchors confirmed or failed. */
export function SystemLog() {
  const { t, lang } = useI18n();
  const [rows, setRows] = useState<E[]>([]);
  const [query, setQuery] = useState<{ kind?: string; limit?: number }>({ limit: 200 });
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(false);
  const load = useCallback(async () => {
    setLoading(true);
    const r = await api.GET('/v1/system/events', { params: { query: clean(query) } });
    setLoading(false);
    if (r.data) {
      setRows(r.data);
      setError(undefined);
    } else setError(errorText(r.error));
  }, [query]);
  useEffect(() => {
    void load();
  }, [load]);
  return (
    <Card title={t('menu_system_log')}>
      <Form layout="inline" name="system-log" initialValues={query} onFinish={(v: { kind?: string; limit?: number }) => setQuery(v)} style={{ marginBottom: 16, rowGap: 8 }}>
        <Form.Item name="kind" label={t('event')}>
          <Select allowClear style={{ width: 200 }} options={KINDS.map((k) => ({ value: k, label: t(`ev_${k}` as Key) }))} />
        </Form.Item>
        <Form.Item name="limit" label={t('limit')}>
          <InputNumber min={1} max={5000} />
        </Form.Item>
        <Space>
          <Button type="primary" htmlType="submit">
            {t('search')}
          </Button>
          <Button onClick={() => void load()}>{t('refresh')}</Button>
        </Space>
      </Form>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Table<E>
        rowKey={(r) => `${r.at_us}-${r.kind}-${r.subject}`}
        size="small"
        loading={loading}
        dataSource={rows}
        pagination={{ pageSize: 50, showSizeChanger: false }}
        columns={[
          { title: t('time'), dataIndex: 'at_us', render: (v: number) => localTime(lang, new Date(v / 1000).toISOString()) },
          { title: t('event'), dataIndex: 'kind', render: (v: string) => (KINDS.includes(v) ? t(`ev_${v}` as Key) : v) },
          { title: t('eventSubject'), dataIndex: 'subject' },
          { title: t('detail'), dataIndex: 'detail', render: (v: string) => <span className="anchord-mono">{v}</span> },
        ]}
      />
    </Card>
  );
}
