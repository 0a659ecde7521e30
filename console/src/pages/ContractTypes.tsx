import { useCallback, useEffect, useState } from 'react';
import { Alert, Card, Form, Input, Table, Tag } from 'antd';
import { api, errorText, must, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';
import { placeholders } from '../util';
import { FormModal, ListCard } from './common';

type CT = Schemas['ContractTypeSummaryJson'];


/** Contract types (contract templates): list, create, read the template text. */
export function ContractTypes() {
  const { t, lang } = useI18n();
  const [rows, setRows] = useState<CT[]>([]);
  const [error, setError] = useState<string>();
  const [creating, setCreating] = useState(false);
  const [selected, setSelected] = useState<Schemas['ContractTypeJson']>();
  const [draft, setDraft] = useState('');
  const load = useCallback(async () => {
    const r = await api.GET('/v1/contract-types');
    if (r.data) setRows(r.data);
    else setError(errorText(r.error));
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const open = async (id: number) => {
    const r = await api.GET('/v1/contract-types/{id}', { params: { path: { id } } });
    if (r.data) setSelected(r.data);
    else setError(errorText(r.error));
  };
  const create = async (v: { name: string; template_text: string }) => {
    const c = await must(api.POST('/v1/contract-types', { body: v }));
    setDraft('');
    await load();
    await open(c.id);
  };
  return (
    <>
      <ListCard title={t('menu_contract_types')} createText={t('create')} onCreate={() => setCreating(true)}>
        {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
        <Table<CT>
          rowKey="id"
          size="small"
          pagination={false}
          dataSource={rows}
          columns={[
            { title: 'ID', dataIndex: 'id', width: 60 },
            {
              title: t('name'),
              dataIndex: 'name',
              render: (v: string, r) => (
                <a
                  href={`#contract-type-${r.id}`}
                  onClick={(e) => {
                    e.preventDefault();
                    void open(r.id);
                  }}
                >
                  {v}
                </a>
              ),
            },
            { title: t('variables'), dataIndex: 'variables', render: (v: string[]) => v.map((x) => <Tag key={x}>{x}</Tag>) },
            { title: t('templateChars'), dataIndex: 'template_chars' },
            { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
          ]}
        />
      </ListCard>
      {selected && (
        <Card title={`${selected.name} · ${t('template')}`} style={{ marginTop: 16 }}>
          <pre className="anchord-template">{selected.template_text}</pre>
        </Card>
      )}
      <FormModal<{ name: string; template_text: string }> open={creating} title={t('newContractType')} onClose={() => setCreating(false)} onSubmit={create}>
        <Form.Item name="name" label={t('name')} rules={[{ required: true, max: 200 }]}>
          <Input />
        </Form.Item>
        <Form.Item name="template_text" label={t('template')} rules={[{ required: true, max: 100000 }]} extra={t('templateHint')}>
          <Input.TextArea rows={10} onChange={(e) => setDraft(e.target.value)} />
        </Form.Item>
        <Form.Item label={t('variables')}>
          <span aria-live="polite">{placeholders(draft).map((x) => <Tag key={x}>{x}</Tag>)}</span>
        </Form.Item>
      </FormModal>
    </>
  );
}
