import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Descriptions, Form, Input, Space, Steps, Tooltip } from 'antd';
import { useParams } from 'react-router';
import { api, errorText, must, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';
import { useSession } from '../session';
import { bytes, fail, FormModal, Mono, StatusTag } from './common';

type P = Schemas['PreservationJson'];

/** Where a preservation stands: saved → submitted → approved → on chain → anchored. */
export function progressOf(p: P): number {
  if (p.status === 'rejected') return 1;
  if (p.ledger?.anchor_status === 'anchored') return 4;
  return { saved: 0, submitted: 1, approved: 2, on_chain: 3 }[p.status] ?? 0;
}

/** Detail with status history, hash, block, checkpoint, anchors, proof and certificate;
 * the status moves without a reload (polled until anchored). */
export function PreservationDetail() {
  const { id } = useParams();
  const pid = Number(id);
  const { t, lang } = useI18n();
  const { me } = useSession();
  const [p, setP] = useState<P>();
  const [error, setError] = useState<string>();
  const [rejecting, setRejecting] = useState(false);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    const r = await api.GET('/v1/preservations/{id}', { params: { path: { id: pid } } });
    if (r.data) {
      setP(r.data);
      setError(undefined);
    } else setError(errorText(r.error));
  }, [pid]);
  useEffect(() => {
    void load();
  }, [load]);
  const step = p ? progressOf(p) : 0;
  useEffect(() => {
    // Poll while the record is on its way to the chain and its anchors.
    if (!p || p.status === 'rejected' || p.status === 'saved' || step >= 4) return;
    const timer = window.setInterval(() => void load(), 2000);
    return () => window.clearInterval(timer);
  }, [p, step, load]);
  if (error) return <Alert type="error" title={error} showIcon />;
  if (!p) return <Card loading />;
  const act = async (what: 'submit' | 'approve') => {
    setBusy(true);
    try {
      await must(api.POST(`/v1/preservations/{id}/${what}`, { params: { path: { id: pid } } }));
      await load();
    } catch (e) {
      fail(e);
    }
    setBusy(false);
  };
  const reject = async (v: { reason: string }) => {
    await must(api.POST('/v1/preservations/{id}/reject', { params: { path: { id: pid } }, body: { reason: v.reason } }));
    await load();
  };
  const canReview = me?.role === 'reviewer' && p.status === 'submitted';
  const canSubmit = me?.role !== 'institution' && me?.role !== 'admin' && (p.status === 'saved' || p.status === 'rejected') && p.file;
  const l = p.ledger;
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      <Card
        title={
          <span>
            {p.number} <StatusTag status={l?.anchor_status === 'anchored' ? 'anchored' : p.status} />
          </span>
        }
        extra={
          <Space>
            {canSubmit && (
              // 申请上链 (the manual's action): the bank's reviewer approves it, then it
              // goes on chain (POST /v1/preservations/{id}/submit).
              <Tooltip title={t('applyOnChainHint')}>
                <Button type="primary" loading={busy} onClick={() => act('submit')}>
                  {t('applyOnChain')}
                </Button>
              </Tooltip>
            )}
            {canReview && (
              <>
                <Button type="primary" loading={busy} onClick={() => act('approve')}>
                  {t('approve')}
                </Button>
                <Button danger onClick={() => setRejecting(true)}>
                  {t('reject')}
                </Button>
              </>
            )}
          </Space>
        }
      >
        <Steps
          current={step}
          status={p.status === 'rejected' ? 'error' : undefined}
          items={[
            { title: t('st_saved'), description: localTime(lang, p.created_at) },
            { title: p.status === 'rejected' ? t('st_rejected') : t('st_submitted'), description: localTime(lang, p.submitted_at) },
            { title: t('approve'), description: localTime(lang, p.reviewed_at) },
            { title: t('st_on_chain') },
            { title: t('st_anchored') },
          ]}
          aria-label={t('stepsTitle')}
        />
        {p.reject_reason && <Alert style={{ marginTop: 16 }} type="warning" title={`${t('rejectReason')}: ${p.reject_reason}`} />}
      </Card>
      <Card title={t('detail')}>
        <Descriptions bordered column={1} size="small">
          {Object.entries((p.fields ?? {}) as Record<string, unknown>).map(([k, v]) => (
            <Descriptions.Item key={k} label={k}>
              {String(v)}
            </Descriptions.Item>
          ))}
          <Descriptions.Item label={t('fileName')}>{p.file?.name}</Descriptions.Item>
          <Descriptions.Item label={t('size')}>{bytes(p.file?.size)}</Descriptions.Item>
          <Descriptions.Item label="SHA-256">
            <Mono>{p.file?.sha256}</Mono>
          </Descriptions.Item>
          {p.file?.sm3 && (
            <Descriptions.Item label="SM3">
              <Mono>{p.file.sm3}</Mono>
            </Descriptions.Item>
          )}
          <Descriptions.Item label={t('updatedAt')}>{localTime(lang, p.updated_at)}</Descriptions.Item>
        </Descriptions>
      </Card>
      {l && (
        <Card title={t('st_on_chain')}>
          <Descriptions bordered column={1} size="small">
            {Object.entries(l as Record<string, unknown>)
              .filter(([k, v]) => !['anchors', 'proof_path', 'certificate_path'].includes(k) && v !== null && typeof v !== 'object')
              .map(([k, v]) => (
                <Descriptions.Item key={k} label={k}>
                  <Mono>{String(v)}</Mono>
                </Descriptions.Item>
              ))}
            <Descriptions.Item label={t('anchors')}>
              {(l.anchors ?? []).length === 0 ? '—' : (l.anchors ?? []).map((a) => <div key={a}><Mono>{a}</Mono></div>)}
            </Descriptions.Item>
          </Descriptions>
          <Space style={{ marginTop: 16 }}>
            {l.proof_path && (
              <a href={l.proof_path} download>
                {t('proofDownload')}
              </a>
            )}
            {l.certificate_path && (
              <a href={l.certificate_path} download>
                {t('certificateDownload')}
              </a>
            )}
          </Space>
        </Card>
      )}
      <FormModal<{ reason: string }> open={rejecting} title={t('reject')} onClose={() => setRejecting(false)} onSubmit={reject} submitText={t('reject')} danger>
        <Form.Item name="reason" label={t('rejectReason')} rules={[{ required: true, max: 2000 }]}>
          <Input.TextArea rows={3} />
        </Form.Item>
      </FormModal>
    </Space>
  );
}
