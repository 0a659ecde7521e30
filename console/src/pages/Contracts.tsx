import { useCallback, useEffect, useState } from 'react';
import { Button, Card, Form, Input, Modal, Select, Space, Table, message } from 'antd';
import { Link, useNavigate } from 'react-router';
import { api, errorText, must, nextAfter, type Schemas } from '../api/client';
import { localTime, statusLabel, useI18n } from '../i18n';
import { useSession } from '../session';
import { StatusTag } from './common';

type C = Schemas['ContractSummaryJson'];
type Status = 'signing' | 'awaiting_review' | 'approved' | 'on_chain' | 'refused' | 'rejected';
const STATUSES: Status[] = ['signing', 'awaiting_review', 'approved', 'on_chain', 'refused', 'rejected'];

/** Contracts: list with signer status; 发起邀约 (start a contract and invite its signers). */
export function Contracts() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const nav = useNavigate();
  const [rows, setRows] = useState<C[]>([]);
  const [status, setStatus] = useState<Status>();
  const [after, setAfter] = useState<number>();
  const [next, setNext] = useState<number>();
  const [types, setTypes] = useState<Schemas['ContractTypeSummaryJson'][]>([]);
  const [creating, setCreating] = useState(false);
  const [typeId, setTypeId] = useState<number>();
  const load = useCallback(async () => {
    const query = { ...(status ? { status } : {}), ...(after ? { after } : {}), limit: 20 };
    const r = await api.GET('/v1/contracts', { params: { query } });
    if (r.data) {
      setRows(r.data);
      setNext(nextAfter(r.response));
    } else message.error(errorText(r.error));
  }, [status, after]);
  useEffect(() => {
    void load();
  }, [load]);
  useEffect(() => {
    void api.GET('/v1/contract-types').then((r) => r.data && setTypes(r.data));
  }, []);
  const type = types.find((x) => x.id === typeId);
  const create = async (v: { title: string; signers: string; variables?: Record<string, string> }) => {
    if (!typeId) return;
    const signers = v.signers
      .split(/[\s,，]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    try {
      const c = await must(api.POST('/v1/contracts', { body: { contract_type_id: typeId, title: v.title, variables: v.variables ?? {}, signers } }));
      setCreating(false);
      nav(`/contracts/${c.id}`);
    } catch (e) {
      message.error(errorText((e as { body?: unknown }).body ?? e));
    }
  };
  const canCreate = me?.role === 'user' || me?.role === 'reviewer';
  return (
    <Card
      title={t('menu_contracts')}
      extra={
        canCreate && (
          <Button type="primary" onClick={() => setCreating(true)}>
            {t('newContract')}
          </Button>
        )
      }
    >
      <Space style={{ marginBottom: 16 }}>
        <Select
          allowClear
          placeholder={t('status')}
          aria-label={t('status')}
          style={{ width: 180 }}
          value={status}
          onChange={(v) => {
            setAfter(undefined);
            setStatus(v);
          }}
          options={STATUSES.map((s) => ({ value: s, label: statusLabel(lang, s) }))}
        />
      </Space>
      <Table<C>
        rowKey="id"
        dataSource={rows}
        pagination={false}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={`/contracts/${r.id}`}>{v}</Link> },
          { title: t('contractTitle'), dataIndex: 'title' },
          { title: t('signers'), render: (_, r) => `${r.signers.filter((s) => s.status === 'signed').length}/${r.signers.length}` },
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
      <Modal open={creating} title={t('newContract')} footer={null} onCancel={() => setCreating(false)} destroyOnHidden>
        <Form layout="vertical" onFinish={create}>
          <Form.Item label={t('contractType')} required htmlFor="contract-type">
            <Select id="contract-type" value={typeId} onChange={setTypeId} options={types.map((x) => ({ value: x.id, label: x.name }))} />
          </Form.Item>
          <Form.Item name="title" label={t('contractTitle')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          {type?.variables.map((k) => (
            <Form.Item key={k} name={['variables', k]} label={k} rules={[{ required: true }]}>
              <Input />
            </Form.Item>
          ))}
          <Form.Item name="signers" label={t('signers')} rules={[{ required: true }]} extra="username, username, …">
            <Input />
          </Form.Item>
          <Button type="primary" htmlType="submit" disabled={!typeId}>
            {t('create')}
          </Button>
        </Form>
      </Modal>
    </Card>
  );
}
