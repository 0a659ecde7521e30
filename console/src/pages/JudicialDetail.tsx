import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Descriptions, Form, Input, Modal, Progress, Space, Upload, message } from 'antd';
import { useParams } from 'react-router';
import { api, errorText, must, uploadWithProgress, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';
import { useSession } from '../session';
import { Mono, StatusTag } from './common';

type R = Schemas['RequestJson'];

/** A judicial request: the subject, the automatic comparison, the report, issue or refuse. */
export function JudicialDetail() {
  const { id } = useParams();
  const rid = Number(id);
  const { t, lang } = useI18n();
  const { me } = useSession();
  const [r, setR] = useState<R>();
  const [error, setError] = useState<string>();
  const [percent, setPercent] = useState<number>();
  const [refusing, setRefusing] = useState(false);
  const load = useCallback(async () => {
    const x = await api.GET('/v1/judicial-requests/{id}', { params: { path: { id: rid } } });
    if (x.data) setR(x.data);
    else setError(errorText(x.error));
  }, [rid]);
  useEffect(() => {
    void load();
  }, [load]);
  if (error) return <Alert type="error" title={error} showIcon />;
  if (!r) return <Card loading />;
  const institution = me?.role === 'institution';
  const open = r.status === 'pending' || r.status === 'in_review';
  const fail = (e: unknown) => message.error(errorText((e as { body?: unknown }).body ?? e));
  const send = async (url: string, file: File) => {
    setPercent(0);
    try {
      await uploadWithProgress('POST', url, file, setPercent);
      await load();
    } catch (e) {
      fail(e);
    }
    setPercent(undefined);
  };
  const compareStored = async () => {
    try {
      await must(api.POST('/v1/judicial-requests/{id}/compare-evidence', { params: { path: { id: rid } } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const review = async () => {
    try {
      await must(api.POST('/v1/judicial-requests/{id}/review', { params: { path: { id: rid } } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const refuse = async (v: { reason: string }) => {
    try {
      await must(api.POST('/v1/judicial-requests/{id}/refuse', { params: { path: { id: rid } }, body: { reason: v.reason } }));
      setRefusing(false);
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const cmp = r.comparison as Record<string, unknown> | null | undefined;
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      <Card
        title={
          <span>
            {r.number} <StatusTag status={r.status} />
          </span>
        }
        extra={
          institution &&
          open && (
            <Space>
              {r.status === 'pending' && <Button onClick={review}>{t('startReview')}</Button>}
              <Button danger onClick={() => setRefusing(true)}>
                {t('refuse')}
              </Button>
            </Space>
          )
        }
      >
        <Descriptions bordered column={1} size="small">
          <Descriptions.Item label={t('kind')}>{t(r.kind === 'ruling' ? 'kind_ruling' : 'kind_notarization')}</Descriptions.Item>
          <Descriptions.Item label={t('subject')}>
            {r.subject_kind} #{r.subject_id}
          </Descriptions.Item>
          <Descriptions.Item label={t('institution')}>{r.institution_name}</Descriptions.Item>
          {r.fee_cents != null && <Descriptions.Item label={t('fee')}>{r.fee_cents}</Descriptions.Item>}
          {r.case_description && <Descriptions.Item label={t('caseDescription')}>{r.case_description}</Descriptions.Item>}
          {r.purpose && <Descriptions.Item label={t('purpose')}>{r.purpose}</Descriptions.Item>}
          {r.refuse_reason && <Descriptions.Item label={t('reason')}>{r.refuse_reason}</Descriptions.Item>}
          <Descriptions.Item label={t('handover')}>{r.evidence.handover ?? '—'}{r.evidence.file ? ` · ${r.evidence.file.name}` : ''}</Descriptions.Item>
          <Descriptions.Item label={t('createdAt')}>{localTime(lang, r.created_at)}</Descriptions.Item>
          {r.decided_at && <Descriptions.Item label={t('done')}>{localTime(lang, r.decided_at)}</Descriptions.Item>}
        </Descriptions>
      </Card>
      <Card title={t('comparison')}>
        {cmp ? (
          <>
            <Alert type={cmp.result === 'match' ? 'success' : 'error'} showIcon title={typeof cmp.message === 'string' ? cmp.message : cmp.result === 'match' ? t('compareOk') : t('compareMismatch')} data-result={String(cmp.result)} />
            <Descriptions bordered column={1} size="small" style={{ marginTop: 16 }}>
              {Object.entries(cmp)
                .filter(([k, v]) => k !== 'message' && typeof v !== 'object')
                .map(([k, v]) => (
                  <Descriptions.Item key={k} label={k}>
                    <Mono>{String(v)}</Mono>
                  </Descriptions.Item>
                ))}
            </Descriptions>
          </>
        ) : (
          <span>{t('noData')}</span>
        )}
        <Space style={{ marginTop: 16 }} wrap>
          {institution && open && r.evidence.handover && (
            <Button type="primary" onClick={compareStored}>
              {t('compareStored')}
            </Button>
          )}
          {r.comparison_report_path && (
            <a href={r.comparison_report_path} download>
              {t('comparisonReport')}
            </a>
          )}
          {institution && open && (
            <Upload showUploadList={false} beforeUpload={(f) => (void send(`/v1/judicial-requests/${rid}/compare`, f), false)}>
              <Button>{t('compare')}</Button>
            </Upload>
          )}
        </Space>
      </Card>
      <Card title={t('downloadCertificate')}>
        <Space>
          {institution && open && (
            <Upload accept="application/pdf" showUploadList={false} beforeUpload={(f) => (void send(`/v1/judicial-requests/${rid}/certificate`, f), false)}>
              <Button type="primary">{t('issueCertificate')}</Button>
            </Upload>
          )}
          {r.status === 'certified' && (
            <a href={`/v1/judicial-requests/${rid}/certificate`} download>
              {t('downloadCertificate')}
            </a>
          )}
        </Space>
        {percent !== undefined && <Progress percent={percent} aria-label={t('upload')} />}
      </Card>
      <Modal open={refusing} title={t('refuse')} footer={null} onCancel={() => setRefusing(false)} destroyOnHidden>
        <Form layout="vertical" onFinish={refuse}>
          <Form.Item name="reason" label={t('reason')} rules={[{ required: true, max: 2000 }]}>
            <Input.TextArea rows={3} />
          </Form.Item>
          <Button type="primary" danger htmlType="submit">
            {t('refuse')}
          </Button>
        </Form>
      </Modal>
    </Space>
  );
}
