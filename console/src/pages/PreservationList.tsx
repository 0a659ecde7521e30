import { useEffect, useState } from 'react';
import { Card, Form, Input, Select, Table } from 'antd';
import { Link, useNavigate } from 'react-router';
import type { Dayjs } from 'dayjs';
import { api, type Schemas } from '../api/client';
import { localTime, statusLabel, useI18n } from '../i18n';
import { clean, dateRange } from '../util';
import { DatesAndSearch, HashFilter, Mono, StatusTag, usePaged } from './common';

type P = Schemas['PreservationJson'];
type Status = 'saved' | 'submitted' | 'approved' | 'on_chain' | 'rejected';
export const PRESERVATION_STATUSES: Status[] = ['saved', 'submitted', 'approved', 'on_chain', 'rejected'];

interface Filters {
  number?: string;
  status?: Status;
  product_id?: number;
  hash?: string;
  initiator?: string;
  field_key?: string;
  field_value?: string;
  from?: string;
  to?: string;
}


const fetchPreservations = (q: Filters, after: number | undefined) => api.GET('/v1/preservations', { params: { query: clean({ ...q, after, limit: 20 }) } });

/** The preservation list with the manual's search: number (prefix), status, product,
 * hash, initiator, a field's value, dates; paged. */
export function PreservationList({ fixedStatus, title }: { fixedStatus?: Status; title?: string }) {
  const { t, lang } = useI18n();
  const nav = useNavigate();
  const [products, setProducts] = useState<Schemas['ProductJson'][]>([]);
  const list = usePaged(fetchPreservations, fixedStatus ? { status: fixedStatus } : {});
  useEffect(() => {
    void api.GET('/v1/products').then((r) => r.data && setProducts(r.data));
  }, []);
  const productName = (id: number) => products.find((p) => p.id === id)?.name ?? `#${id}`;
  return (
    <Card title={title ?? t('menu_preservations')}>
      <Form
        layout="inline"
        name="preservation-search"
        onFinish={(v: Filters & { dates?: [Dayjs | null, Dayjs | null] | null }) => {
          const { dates, ...rest } = v;
          list.search({ ...rest, ...dateRange(dates), ...(fixedStatus ? { status: fixedStatus } : {}) });
        }}
        style={{ marginBottom: 16, rowGap: 8 }}
      >
        <Form.Item name="number" label={t('number')}>
          <Input allowClear placeholder="BQ0000000001" maxLength={32} />
        </Form.Item>
        {!fixedStatus && (
          <Form.Item name="status" label={t('status')}>
            <Select allowClear style={{ width: 150 }} options={PRESERVATION_STATUSES.map((s) => ({ value: s, label: statusLabel(lang, s) }))} />
          </Form.Item>
        )}
        <Form.Item name="product_id" label={t('product')}>
          <Select allowClear style={{ width: 180 }} options={products.map((p) => ({ value: p.id, label: p.name }))} />
        </Form.Item>
        <HashFilter />
        <Form.Item name="initiator" label={t('initiator')}>
          <Input allowClear style={{ width: 120 }} />
        </Form.Item>
        <Form.Item name="field_key" label={t('fieldKey')} dependencies={['field_value']} rules={[({ getFieldValue }) => ({ required: !!getFieldValue('field_value'), message: t('fieldPairRule') })]}>
          <Input allowClear style={{ width: 120 }} />
        </Form.Item>
        <Form.Item name="field_value" label={t('fieldValue')} dependencies={['field_key']} rules={[({ getFieldValue }) => ({ required: !!getFieldValue('field_key'), message: t('fieldPairRule') })]}>
          <Input allowClear style={{ width: 140 }} />
        </Form.Item>
        <DatesAndSearch />
      </Form>
      {list.alert}
      <Table<P>
        rowKey="id"
        loading={list.loading}
        dataSource={list.rows}
        pagination={false}
        onRow={(r) => ({ onDoubleClick: () => void nav(`/preservations/${r.id}`) })}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={`/preservations/${r.id}`}>{v}</Link> },
          { title: t('product'), dataIndex: 'product_id', render: (v: number) => productName(v) },
          { title: t('fileName'), render: (_, r) => r.file?.name ?? '' },
          { title: t('hash'), render: (_, r) => <Mono>{r.file?.sha256.slice(0, 16) ?? ''}</Mono> },
          { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v} /> },
          { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
        ]}
      />
      {list.pager}
    </Card>
  );
}
