import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Descriptions, Form, Input, Space, Table, Tooltip } from 'antd';
import { useParams } from 'react-router';
import { api, errorText, must, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';
import { useSession } from '../session';
import { signContract } from '../sign/flow';
import { webCryptoEd25519 } from '../sign/keys';
import { fail, FormModal, Mono, StatusTag } from './common';

type C = Schemas['ContractJson'];
type S = Schemas['SignerJson'];

/** A contract: body, hash, each signer's status; sign with the key held in this
 * browser (or by the platform) or refuse; review. */
export function ContractDetail() {
  const { id } = useParams();
  const cid = Number(id);
  const { t, lang } = useI18n();
  const { me } = useSession();
  const [c, setC] = useState<C>();
  const [error, setError] = useState<string>();
  const [reason, setReason] = useState<'refuse' | 'reject'>();
  const [signing, setSigning] = useState(false);
  const load = useCallback(async () => {
    const r = await api.GET('/v1/contracts/{id}', { params: { path: { id: cid } } });
    if (r.data) setC(r.data);
    else setError(errorText(r.error));
  }, [cid]);
  useEffect(() => {
    void load();
  }, [load]);
  if (error) return <Alert type="error" title={error} showIcon />;
  if (!c) return <Card loading />;
  const mine = c.signers.find((s) => s.user_id === me?.id && s.status === 'pending');
  const sign = async () => {
    if (!me || !mine) return;
    setSigning(true);
    try {
      if (!(await webCryptoEd25519())) throw new Error(t('noWebCryptoEd25519'));
      // The key held in this browser (custody "client"): made and registered on
      // first use; only the signature over the statement is sent.
      await signContract(c, mine.index, me);
      await load();
    } catch (e) {
      fail(e);
    }
    setSigning(false);
  };
  const signByPlatform = async () => {
    setSigning(true);
    try {
      // The platform holds the key (custody "platform"): registered on first use
      // (409 when one is registered already).
      const k = await api.PUT('/v1/me/signing-key', { body: { custody: 'platform' } });
      if (!k.response.ok && k.response.status !== 409) throw new Error(errorText(k.error));
      await must(api.POST('/v1/contracts/{id}/sign', { params: { path: { id: cid } }, body: {} }));
      await load();
    } catch (e) {
      fail(e);
    }
    setSigning(false);
  };
  const approve = async () => {
    try {
      await must(api.POST('/v1/contracts/{id}/approve', { params: { path: { id: cid } } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const decide = async (v: { reason: string }) => {
    if (reason === 'refuse') await must(api.POST('/v1/contracts/{id}/refuse', { params: { path: { id: cid } }, body: { reason: v.reason } }));
    else await must(api.POST('/v1/contracts/{id}/reject', { params: { path: { id: cid } }, body: { reason: v.reason } }));
    await load();
  };
  const reviewer = me?.role === 'reviewer' && c.status === 'awaiting_review';
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      <Card
        title={
          <span>
            {c.number} · {c.title} <StatusTag status={c.status} />
          </span>
        }
        extra={
          <Space>
            {mine && c.status === 'signing' && (
              <>
                <Tooltip title={t('signBrowserHint')}>
                  <Button type="primary" loading={signing} onClick={sign}>
                    {t('sign')}
                  </Button>
                </Tooltip>
                <Button loading={signing} onClick={signByPlatform}>
                  {t('signPlatform')}
                </Button>
                <Button danger onClick={() => setReason('refuse')}>
                  {t('refuse')}
                </Button>
              </>
            )}
            {reviewer && (
              <>
                <Button type="primary" onClick={approve}>
                  {t('approve')}
                </Button>
                <Button danger onClick={() => setReason('reject')}>
                  {t('reject')}
                </Button>
              </>
            )}
          </Space>
        }
      >
        <Descriptions bordered column={1} size="small">
          <Descriptions.Item label={t('hash')}>
            <Mono>
              {c.hash_alg} {c.contract_hash}
            </Mono>
          </Descriptions.Item>
          <Descriptions.Item label={t('createdAt')}>{localTime(lang, c.created_at)}</Descriptions.Item>
          {c.reject_reason && <Descriptions.Item label={t('reason')}>{c.reject_reason}</Descriptions.Item>}
        </Descriptions>
        <pre style={{ whiteSpace: 'pre-wrap', marginTop: 16 }}>{c.body}</pre>
      </Card>
      <Card title={t('signers')}>
        <Table<S>
          rowKey="index"
          size="small"
          pagination={false}
          dataSource={c.signers}
          columns={[
            { title: '#', dataIndex: 'index', width: 50 },
            { title: t('username'), render: (_, s) => s.username ?? s.invitation?.email ?? s.invitation?.phone ?? '' },
            { title: t('tenant'), dataIndex: 'organisation' },
            { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v === 'pending' ? 'awaiting_signature' : v} /> },
            { title: t('signedAt'), dataIndex: 'signed_at', render: (v: string | null) => localTime(lang, v) },
            { title: t('custody'), dataIndex: 'custody', render: (v: string | null) => (v ? t(v === 'platform' ? 'custodyPlatform' : 'custodyClient') : '') },
            { title: t('publicKey'), dataIndex: 'public_key', render: (v: string | null) => (v ? <Mono>{v.slice(0, 16)}…</Mono> : '') },
          ]}
          expandable={{
            rowExpandable: (s) => !!s.statement || !!s.refuse_reason,
            expandedRowRender: (s) => (
              <Descriptions column={1} size="small">
                {s.refuse_reason && <Descriptions.Item label={t('reason')}>{s.refuse_reason}</Descriptions.Item>}
                {s.statement && (
                  <Descriptions.Item label={t('statement')}>
                    <pre className="anchord-mono">{s.statement}</pre>
                  </Descriptions.Item>
                )}
                {s.signature && (
                  <Descriptions.Item label={t('signature')}>
                    <Mono>{s.signature}</Mono>
                  </Descriptions.Item>
                )}
              </Descriptions>
            ),
          }}
        />
      </Card>
      <FormModal<{ reason: string }>
        open={reason !== undefined}
        title={reason === 'refuse' ? t('refuse') : t('reject')}
        onClose={() => setReason(undefined)}
        onSubmit={decide}
        danger
      >
        <Form.Item name="reason" label={t('reason')} rules={[{ required: true, max: 2000 }]}>
          <Input.TextArea rows={3} />
        </Form.Item>
      </FormModal>
    </Space>
  );
}
