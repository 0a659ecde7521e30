import { useEffect, useState } from 'react';
import { Button, Card, Form, Input, InputNumber, Select, Table, Tabs } from 'antd';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, must, type Schemas } from '../api/client';
import { localTime, statusLabel, useI18n } from '../i18n';
import { useSession } from '../session';
import { FormModal, StatusTag, usePaged } from './common';

type R = Schemas['RequestJson'];
type Status = 'pending' | 'in_review' | 'certified' | 'refused';
const STATUSES: Status[] = ['pending', 'in_review', 'certified', 'refused'];

const fetchRequests = (q: { status?: Status }, after: number | undefined) =>
  api.GET('/v1/judicial-requests', { params: { query: { ...q, limit: 20, ...(after ? { after } : {}) } } });

/** 司法出证: the institution's queue by status; the applicant's requests and the application form. */
export function JudicialList() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const nav = useNavigate();
  const list = usePaged<R, { status?: Status }>(fetchRequests, me?.role === 'institution' ? { status: 'pending' } : {});
  // `?apply=preservation:17` (from the on-chain list of the search): the form opens
  // with that subject.
  const [params] = useSearchParams();
  const preset = /^(preservation|contract):(\d+)$/.exec(params.get('apply') ?? '');
  const [applying, setApplying] = useState(!!preset);
  const [institutions, setInstitutions] = useState<Schemas['Institution'][]>([]);
  const canApply = me?.role === 'user' || me?.role === 'reviewer';
  useEffect(() => {
    if (canApply) void api.GET('/v1/institutions').then((r) => r.data && setInstitutions(r.data));
  }, [canApply]);
  const apply = async (v: { kind: 'notarization' | 'ruling'; subject_kind: 'preservation' | 'contract'; subject_id: number; institution_id: string; case_description?: string; purpose?: string }) => {
    const r = await must(api.POST('/v1/judicial-requests', { body: { ...v, evidence: 'authorised' } }));
    await nav(`/judicial/${r.id}`);
  };
  return (
    <Card
      title={me?.role === 'institution' ? t('menu_queue') : t('menu_judicial')}
      extra={
        canApply && (
          <Button type="primary" onClick={() => setApplying(true)}>
            {t('applyJudicial')}
          </Button>
        )
      }
    >
      <Tabs
        activeKey={list.query.status ?? 'all'}
        onChange={(k) => list.search(k === 'all' ? {} : { status: k as Status })}
        items={[{ key: 'all', label: t('all') }, ...STATUSES.map((s) => ({ key: s, label: statusLabel(lang, s) }))]}
      />
      {list.alert}
      <Table<R>
        rowKey="id"
        dataSource={list.rows}
        loading={list.loading}
        pagination={false}
        columns={[
          { title: t('number'), dataIndex: 'number', render: (v: string, r) => <Link to={`/judicial/${r.id}`}>{v}</Link> },
          { title: t('kind'), dataIndex: 'kind', render: (v: string) => t(v === 'ruling' ? 'kind_ruling' : 'kind_notarization') },
          { title: t('subject'), render: (_, r) => `${r.subject_kind} #${r.subject_id}` },
          { title: t('institution'), dataIndex: 'institution_name' },
          { title: t('status'), dataIndex: 'status', render: (v: string) => <StatusTag status={v} /> },
          { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
        ]}
      />
      {list.pager}
      <FormModal
        open={applying}
        title={t('applyJudicial')}
        onClose={() => setApplying(false)}
        onSubmit={apply}
        submitText={t('create')}
        initialValues={{ kind: 'notarization', subject_kind: (preset?.[1] ?? 'preservation') as 'preservation' | 'contract', subject_id: preset ? Number(preset[2]) : undefined }}
      >
        <Form.Item name="kind" label={t('kind')} rules={[{ required: true }]}>
          <Select options={[{ value: 'notarization', label: t('kind_notarization') }, { value: 'ruling', label: t('kind_ruling') }]} />
        </Form.Item>
        <Form.Item name="subject_kind" label={t('subject')} rules={[{ required: true }]}>
          <Select options={[{ value: 'preservation', label: t('menu_preservations') }, { value: 'contract', label: t('menu_contracts') }]} />
        </Form.Item>
        <Form.Item name="subject_id" label={t('subjectId')} rules={[{ required: true }]}>
          <InputNumber min={1} style={{ width: '100%' }} />
        </Form.Item>
        <Form.Item name="institution_id" label={t('institution')} rules={[{ required: true }]}>
          <Select options={institutions.map((i) => ({ value: i.id, label: i.name }))} />
        </Form.Item>
        <Form.Item name="case_description" label={t('caseDescription')}>
          <Input.TextArea rows={3} maxLength={4000} />
        </Form.Item>
        <Form.Item name="purpose" label={t('purpose')}>
          <Select allowClear options={['civil_litigation', 'evidence_retention', 'other'].map((v) => ({ value: v, label: v }))} />
        </Form.Item>
      </FormModal>
    </Card>
  );
}
