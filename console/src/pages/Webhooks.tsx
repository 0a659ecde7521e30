import { useCallback, useState } from 'react';
import { Alert, Button, Card, Form, Input, Modal, Popconfirm, Space, Table, Typography } from 'antd';
import { api, must, type Schemas } from '../api/client';
import { localTime, useI18n } from '../i18n';
import { useSession } from '../session';
import { fail, FormModal, ListCard, Mono, usePaged } from './common';

type W = Schemas['WebhookJson'];
type D = Schemas['DeliveryJson'];

const fetchWebhooks = (_: object, after: number | undefined) => api.GET('/v1/webhooks', { params: { query: { limit: 50, ...(after ? { after } : {}) } } });

function Deliveries({ hook }: { hook: W }) {
  const { t, lang } = useI18n();
  const fetchPage = useCallback(
    (_: object, after: number | undefined) => api.GET('/v1/webhooks/{id}/deliveries', { params: { path: { id: hook.id }, query: { limit: 50, ...(after ? { after } : {}) } } }),
    [hook.id],
  );
  const list = usePaged(fetchPage, {});
  return (
    <Card title={`${t('deliveries')} · ${hook.url}`} style={{ marginTop: 16 }}>
      {list.error && <Alert type="error" showIcon title={list.error} />}
      <Table<D>
        rowKey="id"
        size="small"
        pagination={false}
        loading={list.loading}
        dataSource={list.rows}
        columns={[
          { title: 'ID', dataIndex: 'id', width: 70 },
          { title: t('event'), dataIndex: 'event' },
          { title: t('status'), dataIndex: 'state', render: (v: string) => t(v === 'delivered' ? 'deliveryDelivered' : v === 'failed' ? 'deliveryFailed' : 'deliveryPending') },
          { title: t('attempts'), dataIndex: 'attempts' },
          { title: t('lastStatus'), dataIndex: 'last_status' },
          { title: t('lastError'), dataIndex: 'last_error' },
          { title: t('deliveredAt'), dataIndex: 'delivered_at', render: (v: string | null) => localTime(lang, v) },
          { title: t('nextAttempt'), dataIndex: 'next_attempt_at', render: (v: string, r) => (r.state === 'pending' ? localTime(lang, v) : '') },
        ]}
      />
      {list.pager}
    </Card>
  );
}

/** Webhooks of the bank (administrators: every bank's): register, list, disable or
 * enable, delete; each one's delivery log. */
export function Webhooks() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const list = usePaged(fetchWebhooks, {});
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<W>();
  const [shown, setShown] = useState<W>();
  const act = async (f: () => Promise<unknown>) => {
    try {
      await f();
      await list.reload();
    } catch (e) {
      fail(e);
    }
  };
  const create = async (v: { url: string; secret?: string }) => {
    const w = await must(api.POST('/v1/webhooks', { body: { url: v.url.trim(), secret: v.secret?.trim() ? v.secret.trim() : null } }));
    setSecret(w);
    await list.reload();
  };
  if (me?.role !== 'admin' && me?.role !== 'reviewer') return null;
  return (
    <>
      <ListCard title={t('menu_webhooks')} createText={t('newWebhook')} onCreate={() => setCreating(true)}>
        {list.alert}
        <Table<W>
          rowKey="id"
          size="small"
          pagination={false}
          loading={list.loading}
          dataSource={list.rows}
          columns={[
            { title: 'ID', dataIndex: 'id', width: 60 },
            { title: 'URL', dataIndex: 'url', render: (v: string) => <Mono>{v}</Mono> },
            { title: t('tenant'), dataIndex: 'tenant', render: (v: string | null) => v ?? t('allBanks') },
            { title: t('enabled'), dataIndex: 'enabled', render: (v: boolean) => (v ? t('yes') : t('no')) },
            { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
            {
              title: t('actions'),
              render: (_, w) => (
                <Space size="small" wrap>
                  <Button size="small" onClick={() => setShown(w)}>
                    {t('deliveries')}
                  </Button>
                  <Button
                    size="small"
                    onClick={() =>
                      act(() =>
                        w.enabled
                          ? must(api.POST('/v1/webhooks/{id}/disable', { params: { path: { id: w.id } } }))
                          : must(api.POST('/v1/webhooks/{id}/enable', { params: { path: { id: w.id } } })),
                      )
                    }
                  >
                    {w.enabled ? t('disable') : t('enable')}
                  </Button>
                  <Popconfirm title={t('confirmDelete')} okText={t('delete')} cancelText={t('cancel')} onConfirm={() => act(() => must(api.DELETE('/v1/webhooks/{id}', { params: { path: { id: w.id } } })))}>
                    <Button size="small" danger>
                      {t('delete')}
                    </Button>
                  </Popconfirm>
                </Space>
              ),
            },
          ]}
        />
        {list.pager}
      </ListCard>
      {shown && <Deliveries key={shown.id} hook={shown} />}
      <FormModal<{ url: string; secret?: string }> open={creating} title={t('newWebhook')} onClose={() => setCreating(false)} onSubmit={create}>
        <Form.Item name="url" label="URL" rules={[{ required: true, type: 'url', max: 2048 }]} extra={t('webhookUrlHint')}>
          <Input placeholder="https://hooks.example.com/anchord" />
        </Form.Item>
        <Form.Item name="secret" label={t('webhookSecret')} extra={t('webhookSecretHint')}>
          <Input.Password autoComplete="off" />
        </Form.Item>
      </FormModal>
      <Modal open={!!secret} title={t('webhookCreated')} onOk={() => setSecret(undefined)} onCancel={() => setSecret(undefined)} cancelButtonProps={{ style: { display: 'none' } }}>
        <p>{t('webhookSecretOnce')}</p>
        <Typography.Paragraph copyable={{ text: secret?.secret ?? '' }}>
          <Mono>{secret?.secret}</Mono>
        </Typography.Paragraph>
      </Modal>
    </>
  );
}
