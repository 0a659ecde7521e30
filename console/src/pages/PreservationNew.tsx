import { useEffect, useState } from 'react';
import { Alert, Button, Card, DatePicker, Form, Input, InputNumber, Progress, Select, Space, Steps, Upload, message } from 'antd';
import { useNavigate } from 'react-router';
import type { Dayjs } from 'dayjs';
import { api, errorText, must, uploadWithProgress, type Schemas } from '../api/client';
import { useI18n } from '../i18n';

type Preview = Schemas['Preview'];
type PreviewField = Schemas['PreviewField'];

/** One input of a product's form, as the preview describes it; Form.Item's
 * id, value and onChange are passed through to the control. */
export function FieldInput({ f, ...control }: { f: PreviewField } & Record<string, unknown>) {
  switch (f.type) {
    case 'number':
      return <InputNumber {...control} style={{ width: '100%' }} stringMode />;
    case 'date':
      return <DatePicker {...control} style={{ width: '100%' }} />;
    default:
      return <Input {...control} maxLength={f.max_length} showCount type={f.input === 'email' ? 'email' : 'text'} />;
  }
}

/** The form of a product (also the administrator's preview). */
export function ProductForm({ preview, onFinish, busy, submitText }: { preview: Preview; onFinish?: (v: Record<string, string>) => void; busy?: boolean; submitText?: string }) {
  const [form] = Form.useForm();
  return (
    <Form
      form={form}
      layout="vertical"
      onFinish={(raw: Record<string, unknown>) => {
        const out: Record<string, string> = {};
        for (const f of preview.form) {
          const v = raw[f.key];
          if (v === undefined || v === null || v === '') continue;
          out[f.key] = f.type === 'date' ? (v as Dayjs).format('YYYY-MM-DD') : typeof v === 'string' ? v : JSON.stringify(v);
        }
        onFinish?.(out);
      }}
    >
      {preview.form.map((f) => (
        <Form.Item key={f.key} name={f.key} label={f.label.replace(/\s*\*$/, '')} tooltip={f.rule} rules={[{ required: f.required }]}>
          <FieldInput f={f} />
        </Form.Item>
      ))}
      {onFinish && (
        <Button type="primary" htmlType="submit" loading={busy}>
          {submitText}
        </Button>
      )}
    </Form>
  );
}

/** A new preservation from a product's template: fill in, upload with progress, submit. */
export function PreservationNew() {
  const { t } = useI18n();
  const nav = useNavigate();
  const [products, setProducts] = useState<Schemas['ProductJson'][]>([]);
  const [productId, setProductId] = useState<number>();
  const [preview, setPreview] = useState<Preview>();
  const [created, setCreated] = useState<Schemas['PreservationJson']>();
  const [percent, setPercent] = useState<number>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  useEffect(() => {
    void api.GET('/v1/products').then((r) => r.data && setProducts(r.data));
  }, []);
  useEffect(() => {
    if (productId === undefined) return;
    void api.GET('/v1/products/{id}/preview', { params: { path: { id: productId } } }).then((r) => r.data && setPreview(r.data));
  }, [productId]);
  const step = created ? (created.file ? 2 : 1) : 0;
  const create = async (fields: Record<string, string>) => {
    if (productId === undefined) return;
    setBusy(true);
    setError(undefined);
    try {
      setCreated(await must(api.POST('/v1/preservations', { body: { product_id: productId, fields: fields as Record<string, never> } })));
      message.success(t('newPreservationDone'));
    } catch (e) {
      setError(errorText(e instanceof Error ? (e as { body?: unknown }).body ?? e : e));
    }
    setBusy(false);
  };
  const upload = async (file: File) => {
    if (!created) return;
    setError(undefined);
    setPercent(0);
    try {
      const p = (await uploadWithProgress('PUT', `/v1/preservations/${created.id}/file`, file, setPercent)) as Schemas['PreservationJson'];
      setCreated(p);
    } catch (e) {
      setPercent(undefined);
      setError(errorText((e as { body?: unknown }).body ?? e));
    }
  };
  const submit = async () => {
    if (!created) return;
    setBusy(true);
    try {
      await must(api.POST('/v1/preservations/{id}/submit', { params: { path: { id: created.id } } }));
      await nav(`/preservations/${created.id}`);
    } catch (e) {
      setError(errorText((e as { body?: unknown }).body ?? e));
    }
    setBusy(false);
  };
  return (
    <Card title={t('menu_new_preservation')}>
      <Steps current={step} items={[{ title: t('step_fill') }, { title: t('step_upload') }, { title: t('step_submit') }]} style={{ marginBottom: 24 }} />
      {error && <Alert type="error" title={error} showIcon style={{ marginBottom: 16 }} />}
      {step === 0 && (
        <>
          <Form layout="vertical">
            <Form.Item label={t('chooseProduct')} htmlFor="product">
              <Select id="product" style={{ maxWidth: 400 }} value={productId} onChange={setProductId} options={products.map((p) => ({ value: p.id, label: p.name }))} />
            </Form.Item>
          </Form>
          {preview && preview.product_id === productId && <ProductForm preview={preview} onFinish={create} busy={busy} submitText={t('save')} />}
        </>
      )}
      {step === 1 && (
        <Space direction="vertical" style={{ width: '100%' }}>
          <Upload.Dragger
            multiple={false}
            showUploadList={false}
            beforeUpload={(f) => {
              void upload(f);
              return false;
            }}
          >
            <p>{t('uploadHint')}</p>
          </Upload.Dragger>
          {percent !== undefined && <Progress percent={percent} aria-label={t('upload')} />}
        </Space>
      )}
      {step === 2 && created && (
        <Space direction="vertical">
          <div>
            {created.number} · {created.file?.name}
          </div>
          <Button type="primary" onClick={submit} loading={busy}>
            {t('submit')}
          </Button>
        </Space>
      )}
    </Card>
  );
}
