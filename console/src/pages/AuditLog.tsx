import { useEffect, useState } from 'react';
import { Alert, Card, Form, Input, Select, Table } from 'antd';
import type { Dayjs } from 'dayjs';
import { api, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';
import { clean, dateRange } from '../util';
import { DatesAndSearch, usePaged } from './common';

interface Filters {
  user?: string;
  action?: string;
  result?: string;
  from?: string;
  to?: string;
}
const fetchAudit = (q: Filters, after: number | undefined) => api.GET('/v1/audit', { params: { query: clean({ ...q, after, limit: 50 }) } });

type Row = Schemas['AuditRow'];

/** The application (audit) log with filters and the chain's verification state. */
export function AuditLog() {
  const { t, lang } = useI18n();
  const [chain, setChain] = useState<Schemas['ChainReport']>();
  const list = usePaged(fetchAudit, {});
  useEffect(() => {
    void api.GET('/v1/audit/verify').then((r) => r.data && setChain(r.data));
  }, []);
  const ok = chain?.ok;
  return (
    <Card title={t('menu_audit')}>
      {chain && <Alert style={{ marginBottom: 16 }} type={ok ? 'success' : 'error'} showIcon title={`${t('auditChain')}: ${ok ? t('auditOk') : t('auditBroken')}`} description={<span className="anchord-mono">{JSON.stringify(chain)}</span>} />}
      {list.alert}
      <Form
        layout="inline"
        style={{ marginBottom: 16 }}
        onFinish={(v: Filters & { dates?: [Dayjs | null, Dayjs | null] | null }) => {
          const { dates, ...rest } = v;
          list.search({ ...rest, ...dateRange(dates) });
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
        <DatesAndSearch label={t('period')} />
      </Form>
      <Table<Row>
        rowKey="id"
        size="small"
        pagination={false}
        loading={list.loading}
        dataSource={list.rows}
        columns={[
          { title: 'ID', dataIndex: 'id', width: 70 },
          { title: t('time'), dataIndex: 'at_us', render: (v: number) => localTime(lang, new Date(v / 1000).toISOString()) },
          { title: t('user'), dataIndex: 'username' },
          { title: t('action'), dataIndex: 'action' },
          { title: t('object'), dataIndex: 'object' },
          { title: t('result'), dataIndex: 'result' },
        ]}
      />
      {list.pager}
    </Card>
  );
}
