import { useCallback, useEffect, useState } from 'react';
import { Button, Card, Form, Input, Select, Space, Table, message } from 'antd';
import { Link, useNavigate } from 'react-router';
import { api, errorText, nextAfter, type Schemas } from '../api/client';
import { localTime, statusLabel, useI18n } from '../i18n';
import { Mono, StatusTag } from './common';

type P = Schemas['PreservationJson'];
type Status = 'saved' | 'submitted' | 'approved' | 'on_chain' | 'rejected';
export const PRESERVATION_STATUSES: Status[] = ['saved', 'submitted', 'approved', 'on_chain', 'rejected'];

interface Filters {
  number?: string;
  status?: Status;
  product_id?: number;
  hash?: string;
  field_key?: string;
  field_value?: string;
}

/** The preservation list with the manual's filters (number, status, product, hash, field value). */
export function PreservationList({ fixedStatus, title }: { fixedStatus?: Status; title?: string }) {
  const { t, lang } = useI18n();
  const nav = useNavigate();
  const [rows, setRows] = useState<P[]>([]);
  const [products, setProducts] = useState<Schemas['ProductJson'][]>([]);
  const [filters, setFilters] = useState<Filters>(fixedStatus ? { status: fixedStatus } : {});
  const [after, setAfter] = useState<number | undefined>();
  const [next, setNext] = useState<number | undefined>();
  const [loading, setLoading] = useState(false);
  const load = useCallback(async () => {
    setLoading(true);
    const q = Object.fromEntries(Object.entries({ ...filters, after, limit: 20 }).filter(([, v]) => v !== undefined && v !== ''));
    const r = await api.GET('/v1/preservations', { params: { query: q } });
    setLoading(false);
    if (r.data) {
      setRows(r.data);
      setNext(nextAfter(r.response));
    } else message.error(errorText(r.error));
  }, [filters, after]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    void api.GET('/v1/products').then((r) => r.data && setProducts(r.data));
  }, []);
  const productName = (id: number) => products.find((p) => p.id === id)?.name ?? `#${id}`;
  return (
    <Card title={title ?? t('menu_preservations')}>
      <Form
        layout="inline"
        onFinish={(v: Filters) => {
          setAfter(undefined);
          setFilters(fixedStatus ? { ...v, status: fixedStatus } : v);
        }}
        style={{ marginBottom: 16, rowGap: 8 }}
      >
        <Form.Item name="number" label={t('number')}>
          <Input allowClear placeholder="BQ0000000001" />
        </Form.Item>
        {!fixedStatus && (
          <Form.Item name="status" label={t('status')}>
            <Select allowClear style={{ width: 150 }} options={PRESERVATION_STATUSES.map((s) => ({ value: s, label: statusLabel(lang, s) }))} />
          </Form.Item>
        )}
        <Form.Item name="product_id" label={t('product')}>
          <Select allowClear style={{ width: 180 }} options={products.map((p) => ({ value: p.id, label: p.name }))} />
        </Form.Item>
        <Form.Item name="hash" label={t('hash')} rules={[{ pattern: /^[0-9a-fA-F]{64}$/, message: '64 hex' }]}>
          <Input allowClear style={{ width: 220 }} />
        </Form.Item>
        <Form.Item name="field_key" label={t('fieldKey')}>
          <Input allowClear style={{ width: 120 }} />
        </Form.Item>
        <Form.Item name="field_value" label={t('fieldValue')}>
          <Input allowClear style={{ width: 140 }} />
        </Form.Item>
        <Space>
          <Button type="primary" htmlType="submit">
            {t('search')}
          </Button>
        </Space>
      </Form>
      <Table<P>
        rowKey="id"
        loading={loading}
        dataSource={rows}
        pagination={false}
        onRow={(r) => ({ onDoubleClick: () => nav(`/preservations/${r.id}`) })}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={`/preservations/${r.id}`}>{v}</Link> },
          { title: t('product'), dataIndex: 'product_id', render: (v: number) => productName(v) },
          { title: t('fileName'), render: (_, r) => r.file?.name ?? '' },
          { title: t('hash'), render: (_, r) => <Mono>{r.file?.sha256.slice(0, 16) ?? ''}</Mono> },
          { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v} /> },
          { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
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
