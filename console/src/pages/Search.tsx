import { useEffect, useState } from 'react';
import { Card, Form, Input, Select, Table, Tabs } from 'antd';
import { Link } from 'react-router';
import type { Dayjs } from 'dayjs';
import { api, type Schemas } from '../api/client';
import { localTime, statusLabel, useI18n } from '../i18n';
import { useSession } from '../session';
import { clean, dateRange } from '../util';
import { DatesAndSearch, HashFilter, Mono, StatusTag, usePaged } from './common';
import { PreservationList } from './PreservationList';

type ContractHit = Schemas['ContractHit'];
type OnChainHit = Schemas['OnChainHit'];
type Dates = [Dayjs | null, Dayjs | null] | null;
const CONTRACT_STATUSES = ['signing', 'awaiting_review', 'approved', 'on_chain', 'refused', 'rejected'];

interface ContractQuery {
  number?: string;
  contract_type_id?: number;
  status?: string;
  hash?: string;
  initiator?: string;
  from?: string;
  to?: string;
}
interface OnChainQuery {
  kind?: string;
  number?: string;
  hash?: string;
  from?: string;
  to?: string;
}

const fetchContracts = (q: ContractQuery, after: number | undefined) => api.GET('/v1/search/contracts', { params: { query: clean({ ...q, after, limit: 20 }) } });
const fetchOnChain = (q: OnChainQuery, after: number | undefined) => api.GET('/v1/search/on-chain', { params: { query: clean({ ...q, after, limit: 20 }) } });

function ContractSearch() {
  const { t, lang } = useI18n();
  const [types, setTypes] = useState<Schemas['ContractTypeSummaryJson'][]>([]);
  const list = usePaged(fetchContracts, {});
  useEffect(() => {
    void api.GET('/v1/contract-types').then((r) => r.data && setTypes(r.data));
  }, []);
  return (
    <>
      <Form
        layout="inline"
        name="contract-search"
        style={{ marginBottom: 16, rowGap: 8 }}
        onFinish={(v: ContractQuery & { dates?: Dates }) => {
          const { dates, ...rest } = v;
          list.search({ ...rest, ...dateRange(dates) });
        }}
      >
        <Form.Item name="number" label={t('number')}>
          <Input allowClear placeholder="HT0000000001" maxLength={32} />
        </Form.Item>
        <Form.Item name="contract_type_id" label={t('contractType')}>
          <Select allowClear style={{ width: 160 }} options={types.map((x) => ({ value: x.id, label: x.name }))} />
        </Form.Item>
        <Form.Item name="status" label={t('status')}>
          <Select allowClear style={{ width: 150 }} options={CONTRACT_STATUSES.map((s) => ({ value: s, label: statusLabel(lang, s) }))} />
        </Form.Item>
        <HashFilter />
        <Form.Item name="initiator" label={t('initiator')}>
          <Input allowClear style={{ width: 120 }} />
        </Form.Item>
        <DatesAndSearch />
      </Form>
      {list.alert}
      <Table<ContractHit>
        rowKey="id"
        loading={list.loading}
        dataSource={list.rows}
        pagination={false}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={`/contracts/${r.id}`}>{v}</Link> },
          { title: t('contractTitle'), dataIndex: 'title' },
          { title: t('contractType'), dataIndex: 'contract_type' },
          { title: t('initiator'), dataIndex: 'initiator' },
          { title: t('hash'), dataIndex: 'contract_hash', render: (v: string) => <Mono>{v.slice(0, 16)}</Mono> },
          { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v} /> },
          { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
        ]}
      />
      {list.pager}
    </>
  );
}

/** 司法出证's subject list: the bank's preservations and contracts on chain, one list. */
function OnChainSearch() {
  const { t, lang } = useI18n();
  const list = usePaged(fetchOnChain, {});
  return (
    <>
      <Form
        layout="inline"
        name="on-chain-search"
        style={{ marginBottom: 16, rowGap: 8 }}
        onFinish={(v: OnChainQuery & { dates?: Dates }) => {
          const { dates, ...rest } = v;
          list.search({ ...rest, ...dateRange(dates) });
        }}
      >
        <Form.Item name="kind" label={t('kind')}>
          <Select
            allowClear
            style={{ width: 130 }}
            options={[
              { value: 'preservation', label: t('kindPreservation') },
              { value: 'contract', label: t('kindContract') },
            ]}
          />
        </Form.Item>
        <Form.Item name="number" label={t('number')}>
          <Input allowClear maxLength={32} />
        </Form.Item>
        <HashFilter />
        <DatesAndSearch />
      </Form>
      {list.alert}
      <Table<OnChainHit>
        rowKey={(r) => `${r.kind}-${r.id}`}
        loading={list.loading}
        dataSource={list.rows}
        pagination={false}
        columns={[
          { title: t('kind'), dataIndex: 'kind', render: (v: string) => (v === 'contract' ? t('kindContract') : t('kindPreservation')) },
          {
            title: t('number'),
            dataIndex: 'number',
            render: (v: string, r) => <Link to={r.kind === 'contract' ? `/contracts/${r.id}` : `/preservations/${r.id}`}>{v}</Link>,
          },
          { title: t('name'), dataIndex: 'title' },
          { title: t('hash'), dataIndex: 'hash', render: (v: string) => <Mono>{v.slice(0, 16)}</Mono> },
          { title: t('sequence'), dataIndex: 'ledger_seq' },
          { title: t('block'), dataIndex: 'block_height' },
          { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
          {
            title: t('actions'),
            render: (_, r) => (
              <Link to={`/judicial?apply=${r.kind}:${r.id}`} aria-label={`${t('applyJudicial')} ${r.number}`}>
                {t('applyJudicial')}
              </Link>
            ),
          },
        ]}
      />
      {list.pager}
    </>
  );
}

/** The combined search: preservations, contracts, and the on-chain list of 司法出证. */
export function Search() {
  const { t } = useI18n();
  const { me } = useSession();
  const bank = me?.role === 'user' || me?.role === 'reviewer';
  return (
    <Card title={t('menu_search')}>
      <Tabs
        destroyOnHidden
        items={[
          { key: 'preservations', label: t('menu_preservations'), children: <PreservationList title={t('searchPreservations')} /> },
          { key: 'contracts', label: t('menu_contracts'), children: <ContractSearch /> },
          ...(bank ? [{ key: 'on-chain', label: t('searchOnChain'), children: <OnChainSearch /> }] : []),
        ]}
      />
    </Card>
  );
}
