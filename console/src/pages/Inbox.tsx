import { useCallback, useEffect, useState } from 'react';
import { Alert, Badge, Card, Table, Tabs } from 'antd';
import { Link } from 'react-router';
import { api, type Schemas } from '../api/client';
import { localTime, type Key, useI18n } from '../i18n';
import { useSession } from '../session';
import { StatusTag, usePaged } from './common';
import { PreservationList } from './PreservationList';

type Item = Schemas['InboxItem'];

/** Where an inbox item opens in the console. */
export function consolePathOf(i: Item): string {
  switch (i.kind) {
    case 'preservation_reviews':
      return `/preservations/${i.id}`;
    case 'judicial_requests':
      return `/judicial/${i.id}`;
    default:
      return `/contracts/${i.id}`;
  }
}

function Items({ kind }: { kind: string }) {
  const { t, lang } = useI18n();
  const fetchPage = useCallback((_: object, after: number | undefined) => api.GET('/v1/inbox/{kind}', { params: { path: { kind }, query: { limit: 20, ...(after ? { after } : {}) } } }), [kind]);
  const list = usePaged(fetchPage, {});
  return (
    <>
      {list.alert}
      <Table<Item>
        rowKey="id"
        loading={list.loading}
        dataSource={list.rows}
        pagination={false}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={consolePathOf(r)}>{v}</Link> },
          { title: t('contractTitle'), dataIndex: 'title' },
          { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v} /> },
          { title: t('waitingSince'), dataIndex: 'since', render: (v: string) => localTime(lang, v) },
        ]}
      />
      {list.pager}
    </>
  );
}

/** The to-do inbox (GET /v1/inbox): a reviewer's preservations and contracts to
 * review, the contracts waiting for the caller's signature; with counts. */
export function Inbox() {
  const { t } = useI18n();
  const { me } = useSession();
  const [counts, setCounts] = useState<Record<string, number>>({});
  const [error, setError] = useState<string>();
  useEffect(() => {
    void api.GET('/v1/inbox').then((r) => (r.data ? setCounts(r.data.counts) : setError(r.response.statusText)));
  }, []);
  const label = (k: Key, kind: string) => (
    <span>
      {t(k)} <Badge count={counts[kind] ?? 0} showZero size="small" color="#595959" />
    </span>
  );
  const tabs = [
    ...(me?.role === 'reviewer'
      ? [
          // The bank's submitted preservations, with their files (the reviewer's own
          // submissions are listed too; only another reviewer can approve those).
          { key: 'preservation_reviews', label: label('inbox_preservation_reviews', 'preservation_reviews'), children: <PreservationList fixedStatus="submitted" title={t('inbox_preservation_reviews')} /> },
          { key: 'contract_reviews', label: label('inbox_contract_reviews', 'contract_reviews'), children: <Items kind="contract_reviews" /> },
        ]
      : []),
    { key: 'contract_signatures', label: label('inbox_contract_signatures', 'contract_signatures'), children: <Items kind="contract_signatures" /> },
  ];
  return (
    <Card title={t('menu_inbox')}>
      {error && <Alert type="error" showIcon title={error} />}
      <Tabs destroyOnHidden items={tabs} />
    </Card>
  );
}
