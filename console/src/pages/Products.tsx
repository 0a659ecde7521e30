import { useCallback, useEffect, useState } from 'react';
import { Button, Card, Checkbox, Col, Form, Input, InputNumber, Row, Select, Space, Table } from 'antd';
import { api, must, type Schemas } from '../api/client';
import { useI18n } from '../i18n';
import { fail, FormModal, ListCard } from './common';
import { ProductForm } from './PreservationNew';

type Product = Schemas['ProductJson'];
type Field = Schemas['Field'];
const TYPES = ['text', 'number', 'date', 'email', 'phone', 'id_number'];

/** Products with the field-template editor: add, edit, reorder, delete, preview. */
export function Products() {
  const { t } = useI18n();
  const [products, setProducts] = useState<Product[]>([]);
  const [selected, setSelected] = useState<number>();
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<Field | 'new'>();
  const [preview, setPreview] = useState<Schemas['Preview']>();
  const load = useCallback(async () => {
    const r = await api.GET('/v1/products');
    if (r.data) setProducts(r.data);
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const product = products.find((p) => p.id === selected);
  useEffect(() => {
    if (selected === undefined) return;
    void api.GET('/v1/products/{id}/preview', { params: { path: { id: selected } } }).then((r) => setPreview(r.data));
  }, [selected, products]);
  const create = async (v: { name: string; description?: string; channels?: string[] }) => {
    const p = await must(api.POST('/v1/products', { body: { name: v.name, description: v.description ?? '', channels: v.channels ?? [], fields: [] } }));
    await load();
    setSelected(p.id);
  };
  const saveField = async (v: Field) => {
    if (!product) return;
    if (editing === 'new') {
      await must(api.POST('/v1/products/{id}/fields', { params: { path: { id: product.id } }, body: { ...v, required: !!v.required, disclose_on_certificate: !!v.disclose_on_certificate } }));
    } else if (editing) {
      const { key: _key, ...patch } = v;
      await must(api.PATCH('/v1/products/{id}/fields/{key}', { params: { path: { id: product.id, key: editing.key } }, body: patch }));
    }
    await load();
  };
  const remove = async (key: string) => {
    if (!product) return;
    try {
      await must(api.DELETE('/v1/products/{id}/fields/{key}', { params: { path: { id: product.id, key } } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const move = async (i: number, d: -1 | 1) => {
    if (!product) return;
    const keys = product.fields.map((f) => f.key);
    const j = i + d;
    if (j < 0 || j >= keys.length) return;
    [keys[i], keys[j]] = [keys[j], keys[i]];
    try {
      await must(api.PUT('/v1/products/{id}/fields/order', { params: { path: { id: product.id } }, body: { keys } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  return (
    <Row gutter={16}>
      <Col span={8}>
        <ListCard title={t('menu_products')} createText={t('create')} onCreate={() => setCreating(true)}>
          <Table<Product>
            rowKey="id"
            size="small"
            pagination={false}
            dataSource={products}
            rowSelection={{ type: 'radio', selectedRowKeys: selected ? [selected] : [], onChange: (k) => setSelected(Number(k[0])), columnTitle: t('edit') }}
            onRow={(r) => ({ onClick: () => setSelected(r.id) })}
            columns={[
              { title: 'ID', dataIndex: 'id', width: 60 },
              { title: t('productName'), dataIndex: 'name' },
              { title: t('fields'), render: (_, r) => r.fields.length },
            ]}
          />
        </ListCard>
      </Col>
      <Col span={16}>
        {product && (
          <Space direction="vertical" style={{ width: '100%' }}>
            <ListCard title={`${product.name} · ${t('fields')}`} createText={t('addField')} onCreate={() => setEditing('new')}>
              <Table<Field>
                rowKey="key"
                size="small"
                pagination={false}
                dataSource={product.fields}
                columns={[
                  { title: 'key', dataIndex: 'key' },
                  { title: t('displayName'), dataIndex: 'display_name' },
                  { title: t('type'), dataIndex: 'type' },
                  { title: t('maxLength'), dataIndex: 'max_length' },
                  { title: t('required'), dataIndex: 'required', render: (v: boolean) => (v ? '✓' : '') },
                  { title: t('disclose'), dataIndex: 'disclose_on_certificate', render: (v: boolean) => (v ? '✓' : '') },
                  {
                    title: t('actions'),
                    render: (_, f, i) => (
                      <Space size="small">
                        <Button size="small" onClick={() => move(i, -1)} disabled={i === 0}>
                          {t('moveUp')}
                        </Button>
                        <Button size="small" onClick={() => move(i, 1)} disabled={i === product.fields.length - 1}>
                          {t('moveDown')}
                        </Button>
                        <Button size="small" onClick={() => setEditing(f)}>
                          {t('edit')}
                        </Button>
                        <Button size="small" danger onClick={() => remove(f.key)}>
                          {t('delete')}
                        </Button>
                      </Space>
                    ),
                  },
                ]}
              />
            </ListCard>
            <Card title={t('preview')}>{preview && preview.product_id === product.id && <ProductForm preview={preview} />}</Card>
          </Space>
        )}
      </Col>
      <FormModal<{ name: string; description?: string; channels?: string[] }> open={creating} title={t('create')} onClose={() => setCreating(false)} onSubmit={create}>
        <Form.Item name="name" label={t('productName')} rules={[{ required: true, max: 200 }]}>
          <Input />
        </Form.Item>
        <Form.Item name="description" label={t('description')}>
          <Input.TextArea maxLength={4000} />
        </Form.Item>
        <Form.Item name="channels" label={t('channels')}>
          <Checkbox.Group options={[{ value: 'notarization', label: t('kind_notarization') }, { value: 'judicial_ruling', label: t('kind_ruling') }]} />
        </Form.Item>
      </FormModal>
      <FormModal<Field>
        open={editing !== undefined}
        title={editing === 'new' ? t('addField') : t('edit')}
        onClose={() => setEditing(undefined)}
        onSubmit={saveField}
        initialValues={editing === 'new' ? { type: 'text', max_length: 50, required: false } : editing}
      >
        <Form.Item name="key" label="key" rules={[{ required: true, max: 64, pattern: /^[A-Za-z][A-Za-z0-9_]*$/ }]}>
          <Input disabled={editing !== 'new'} />
        </Form.Item>
        <Form.Item name="display_name" label={t('displayName')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="type" label={t('type')} rules={[{ required: true }]}>
          <Select options={TYPES.map((v) => ({ value: v, label: v }))} />
        </Form.Item>
        <Form.Item name="max_length" label={t('maxLength')} rules={[{ required: true }]}>
          <InputNumber min={1} />
        </Form.Item>
        <Form.Item name="required" valuePropName="checked">
          <Checkbox>{t('required')}</Checkbox>
        </Form.Item>
        <Form.Item name="disclose_on_certificate" valuePropName="checked">
          <Checkbox>{t('disclose')}</Checkbox>
        </Form.Item>
      </FormModal>
    </Row>
  );
}
