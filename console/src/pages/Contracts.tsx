import { useEffect, useState } from 'react';
import { Alert, Button, Card, Form, Input, Modal, Select, Space, Table, Tag, Typography } from 'antd';
import { Link, useNavigate } from 'react-router';
import { api, must, type Schemas } from '../api/client';
import { localTime, statusLabel, useI18n } from '../i18n';
import { useSession } from '../session';
import { signerSpec, type SignerKind, type SignerRow } from '../util';
import { FormModal, StatusTag, usePaged } from './common';

type C = Schemas['ContractSummaryJson'];
type Status = 'signing' | 'awaiting_review' | 'approved' | 'on_chain' | 'refused' | 'rejected';
const STATUSES: Status[] = ['signing', 'awaiting_review', 'approved', 'on_chain', 'refused', 'rejected'];

const fetchContracts = (q: { status?: Status }, after: number | undefined) => api.GET('/v1/contracts', { params: { query: { ...q, limit: 20, ...(after ? { after } : {}) } } });

/** Contracts: list with signer status; 发起邀约 (start a contract and invite its signers). */
export function Contracts() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const nav = useNavigate();
  const list = usePaged<C, { status?: Status }>(fetchContracts, {});
  const [types, setTypes] = useState<Schemas['ContractTypeSummaryJson'][]>([]);
  const [creating, setCreating] = useState(false);
  const [typeId, setTypeId] = useState<number>();
  const [links, setLinks] = useState<Schemas['ContractJson']>();
  useEffect(() => {
    void api.GET('/v1/contract-types').then((r) => r.data && setTypes(r.data));
  }, []);
  const type = types.find((x) => x.id === typeId);
  const create = async (v: { title: string; signers: SignerRow[]; variables?: Record<string, string> }) => {
    if (!typeId) throw new Error(t('contractType'));
    const c = await must(api.POST('/v1/contracts', { body: { contract_type_id: typeId, title: v.title, variables: v.variables ?? {}, signers: v.signers.map(signerSpec) } }));
    // The invitation links come once, in this answer: show them before leaving.
    if (c.invitation_links.length) setLinks(c);
    else await nav(`/contracts/${c.id}`);
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
          value={list.query.status}
          onChange={(v?: Status) => list.search(v ? { status: v } : {})}
          options={STATUSES.map((s) => ({ value: s, label: statusLabel(lang, s) }))}
        />
      </Space>
      {list.alert}
      <Table<C>
        rowKey="id"
        dataSource={list.rows}
        loading={list.loading}
        pagination={false}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={`/contracts/${r.id}`}>{v}</Link> },
          { title: t('contractTitle'), dataIndex: 'title' },
          { title: t('signers'), render: (_, r) => `${r.signers.filter((s) => s.status === 'signed').length}/${r.signers.length}` },
          { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v} /> },
          { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
        ]}
      />
      {list.pager}
      <FormModal<{ title: string; signers: SignerRow[]; variables?: Record<string, string> }>
        open={creating}
        title={t('newContract')}
        onClose={() => setCreating(false)}
        onSubmit={create}
        submitText={t('create')}
        initialValues={{ signers: [{ kind: 'own' }] }}
      >
        <Form.Item label={t('contractType')} required htmlFor="contract-type">
          <Select id="contract-type" value={typeId} onChange={setTypeId} options={types.map((x) => ({ value: x.id, label: x.name }))} />
        </Form.Item>
        <Form.Item name="title" label={t('contractTitle')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        {type?.variables.map((k) => (
          <Form.Item key={k} name={['variables', k]} label={k} rules={[{ required: true, max: 2000 }]}>
            <Input />
          </Form.Item>
        ))}
        <Form.List name="signers">
          {(fields, { add, remove }) => (
            <fieldset className="anchord-signers">
              <legend>{t('signers')}</legend>
              {fields.map((f, i) => (
                <Space key={f.key} align="baseline" wrap>
                  <span aria-hidden>{i + 1}.</span>
                  <Form.Item name={[f.name, 'kind']} label={`${t('signerKind')} ${i + 1}`} rules={[{ required: true }]}>
                    <Select
                      style={{ width: 150 }}
                      options={(['own', 'other', 'email', 'phone'] as const).map((k) => ({ value: k, label: t(`signer_${k}`) }))}
                    />
                  </Form.Item>
                  <Form.Item noStyle shouldUpdate>
                    {({ getFieldValue }) => {
                      const kind = getFieldValue(['signers', f.name, 'kind']) as SignerKind;
                      return kind === 'email' || kind === 'phone' ? (
                        <Form.Item
                          name={[f.name, 'contact']}
                          label={kind === 'email' ? t('email') : t('phone')}
                          rules={[{ required: true }, kind === 'email' ? { type: 'email' } : { pattern: /^\+[0-9]{6,20}$/, message: t('phoneRule') }]}
                        >
                          <Input style={{ width: 220 }} />
                        </Form.Item>
                      ) : (
                        <Space align="baseline">
                          {kind === 'other' && (
                            <Form.Item name={[f.name, 'organisation']} label={t('organisation')} rules={[{ required: true }]}>
                              <Input style={{ width: 120 }} placeholder="bank-b" />
                            </Form.Item>
                          )}
                          <Form.Item name={[f.name, 'username']} label={t('username')} rules={[{ required: true }]}>
                            <Input style={{ width: 140 }} />
                          </Form.Item>
                        </Space>
                      );
                    }}
                  </Form.Item>
                  {fields.length > 1 && (
                    <Button size="small" onClick={() => remove(f.name)}>
                      {t('delete')} {i + 1}
                    </Button>
                  )}
                </Space>
              ))}
              {fields.length < 20 && (
                <Button onClick={() => add({ kind: 'own' })} style={{ marginBottom: 16 }}>
                  {t('addSigner')}
                </Button>
              )}
            </fieldset>
          )}
        </Form.List>
      </FormModal>
      <Modal
        open={!!links}
        title={t('invitationLinks')}
        onOk={() => links && void nav(`/contracts/${links.id}`)}
        onCancel={() => links && void nav(`/contracts/${links.id}`)}
        cancelButtonProps={{ style: { display: 'none' } }}
        width={720}
      >
        <Alert type="warning" showIcon title={t('invitationLinksOnce')} style={{ marginBottom: 16 }} />
        {links?.invitation_links.map((l) => (
          <div key={l.index} className="anchord-invitation-link">
            <Space wrap>
              <strong>
                {l.index + 1}. {l.email ?? l.phone}
              </strong>
              {/* How the link reaches the invitee: mailed, texted, or not at all (pass it on). */}
              <Tag className={`anchord-status anchord-status-${l.delivery === 'none' ? 'warn' : 'ok'}`} data-delivery={l.delivery} title={l.delivery_note}>
                {t(l.delivery === 'email' ? 'deliveryEmail' : l.delivery === 'sms' ? 'deliverySms' : 'deliveryNone')}
              </Tag>
            </Space>
            <Typography.Paragraph copyable={{ text: `${window.location.origin}${l.link}` }}>
              <span className="anchord-mono">{`${window.location.origin}${l.link}`}</span>
            </Typography.Paragraph>
          </div>
        ))}
      </Modal>
    </Card>
  );
}
