import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Form, Input, Select, Space, Table } from 'antd';
import { api, errorText, nextAfter, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';

type Row = Schemas['AuditRow'];

/** The application (audit) log with filters and the chain's verification state. */
export function AuditLog() {
  const { t, lang } = useI18n();
  const [rows, setRows] = useState<Row[]>([]);
  const [chain, setChain] = useState<Schemas['ChainReport']>();
  const [filters, setFilters] = useState<{ user?: string; action?: string; result?: string }>({});
  const [after, setAfter] = useState<number>();
  const [next, setNext] = useState<number>();
  const [error, setError] = useState<string>();
  const load = useCallback(async () => {
    const q = Object.fromEntries(Object.entries({ ...filters, after, limit: 50 }).filter(([, v]) => v !== undefined && v !== ''));
    const r = await api.GET('/v1/audit', { params: { query: q } });
    if (r.data) {
      setRows(r.data);
      setNext(nextAfter(r.response));
    } else setError(errorText(r.error));
  }, [filters, after]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    void api.GET('/v1/audit/verify').then((r) => r.data && setChain(r.data));
  }, []);
  const ok = chain?.ok;
  return (
    <Card title={t('menu_audit')}>
      {chain && <Alert style={{ marginBottom: 16 }} type={ok ? 'success' : 'error'} showIcon title={`${t('auditChain')}: ${ok ? t('auditOk') : t('auditBroken')}`} description={<span className="anchord-mono">{JSON.stringify(chain)}</span>} />}
      {error && <Alert type="error" title={error} />}
      <Form
        layout="inline"
        style={{ marginBottom: 16 }}
        onFinish={(v: { user?: string; action?: string; result?: string }) => {
          setAfter(undefined);
          setFilters(v);
        }}
      >
        <Form.Item name="user" label={t('user')}>
          <Input allowClear />
        </Form.Item>
        <Form.Item name="action" label={t('action')}>
          <Input allowClear placeholder="preservation." />
        </Form.Item>
        <Form.Item name="result" label={t('result')}>
          <Select allowClear style={{ width: 120 }} options={['ok', 'denied', 'failed'].map((v) => ({ value: v, label: v }))} />
        </Form.Item>
        <Button type="primary" htmlType="submit">
          {t('search')}
        </Button>
      </Form>
      <Table<Row>
        rowKey="id"
        size="small"
        pagination={false}
        dataSource={rows}
        columns={[
          { title: 'ID', dataIndex: 'id', width: 70 },
          { title: t('time'), dataIndex: 'at_us', render: (v: number) => localTime(lang, new Date(v / 1000).toISOString()) },
          { title: t('user'), dataIndex: 'username' },
          { title: t('action'), dataIndex: 'action' },
          { title: t('object'), dataIndex: 'object' },
          { title: t('result'), dataIndex: 'result' },
        ]}
      />
      <Space style={{ marginTop: 16 }}>
        <Button disabled={after === undefined} onClick={() => setAfter(undefined)}>
          {t('firstPage')}
        </Button>
        <Button disabled={next === undefined} onClick={() => setAfter(next)}>
          {t('nextPage')}
        </Button>
      </Space>
    </Card>
  );
}
