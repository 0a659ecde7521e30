import { useCallback, useEffect, useState } from 'react';
import { Button, Card, Form, Input, InputNumber, Modal, Select, Space, Table, message } from 'antd';
import { api, errorText, must, type Schemas } from '../api/client';
import { localTime, type Key, useI18n } from '../i18n';

type U = Schemas['UserJson'];
type I = Schemas['Institution'];
type O = Schemas['OrganisationJson'];
type OrgKind = 'bank' | 'enterprise' | 'notary' | 'court';
type Role = 'admin' | 'reviewer' | 'user' | 'institution';

/** Organisations (institutions) and users. */
export function UsersPage() {
  const { t, lang } = useI18n();
  const [users, setUsers] = useState<U[]>([]);
  const [insts, setInsts] = useState<I[]>([]);
  const [newUser, setNewUser] = useState(false);
  const [newInst, setNewInst] = useState(false);
  const [orgs, setOrgs] = useState<O[]>([]);
  const [newOrg, setNewOrg] = useState(false);
  const load = useCallback(async () => {
    const [u, i, o] = await Promise.all([api.GET('/v1/users'), api.GET('/v1/institutions'), api.GET('/v1/organisations')]);
    if (o.data) setOrgs(o.data);
    if (u.data) setUsers(u.data);
    if (i.data) setInsts(i.data);
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const fail = (e: unknown) => message.error(errorText((e as { body?: unknown }).body ?? e));
  const createUser = async (v: { username: string; password: string; role: Role; tenant?: string; institution_id?: string }) => {
    try {
      await must(api.POST('/v1/users', { body: v }));
      setNewUser(false);
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const createInst = async (v: { id: string; name: string; kind: 'notary' | 'court'; fee_cents?: number }) => {
    try {
      await must(api.POST('/v1/institutions', { body: v }));
      setNewInst(false);
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const createOrg = async (v: { name: string; kind: OrgKind; tenant?: string; institution_id?: string; fee_cents?: number }) => {
    try {
      await must(api.POST('/v1/organisations', { body: v }));
      setNewOrg(false);
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const toggleOrg = async (o: O) => {
    try {
      if (o.enabled) await must(api.POST('/v1/organisations/{id}/disable', { params: { path: { id: o.id } } }));
      else await must(api.POST('/v1/organisations/{id}/enable', { params: { path: { id: o.id } } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  const toggle = async (u: U) => {
    try {
      if (u.disabled_at) await must(api.POST('/v1/users/{id}/enable', { params: { path: { id: u.id } } }));
      else await must(api.POST('/v1/users/{id}/disable', { params: { path: { id: u.id } } }));
      await load();
    } catch (e) {
      fail(e);
    }
  };
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      <Card
        title={t('organisations')}
        extra={
          <Button type="primary" onClick={() => setNewOrg(true)}>
            {t('newOrganisation')}
          </Button>
        }
      >
        <Table<O>
          rowKey="id"
          size="small"
          pagination={false}
          dataSource={orgs}
          columns={[
            { title: t('name'), dataIndex: 'name' },
            { title: t('kind'), dataIndex: 'kind' },
            { title: t('tenant'), render: (_, o) => o.tenant ?? o.institution_id ?? '' },
            { title: t('users_count'), dataIndex: 'users' },
            { title: t('enabled'), dataIndex: 'enabled', render: (v: boolean) => (v ? '✓' : '✗') },
            {
              title: t('actions'),
              render: (_, o) => (
                <Button size="small" onClick={() => toggleOrg(o)}>
                  {o.enabled ? 'disable' : 'enable'}
                </Button>
              ),
            },
          ]}
        />
      </Card>
      <Card
        title={t('users')}
        extra={
          <Button type="primary" onClick={() => setNewUser(true)}>
            {t('newUser')}
          </Button>
        }
      >
        <Table<U>
          rowKey="id"
          size="small"
          dataSource={users}
          columns={[
            { title: t('username'), dataIndex: 'username' },
            { title: t('role'), dataIndex: 'role', render: (v: string) => t(`role_${v}` as Key) },
            { title: t('tenant'), dataIndex: 'tenant' },
            { title: t('institution'), dataIndex: 'institution_id' },
            { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
            {
              title: t('actions'),
              render: (_, u) => (
                <Button size="small" onClick={() => toggle(u)}>
                  {u.disabled_at ? 'enable' : 'disable'}
                </Button>
              ),
            },
          ]}
        />
      </Card>
      <Card
        title={t('institutions')}
        extra={
          <Button type="primary" onClick={() => setNewInst(true)}>
            {t('newInstitution')}
          </Button>
        }
      >
        <Table<I>
          rowKey="id"
          size="small"
          pagination={false}
          dataSource={insts}
          columns={[
            { title: 'ID', dataIndex: 'id' },
            { title: t('name'), dataIndex: 'name' },
            { title: t('kind'), dataIndex: 'kind' },
            { title: t('fee'), dataIndex: 'fee_cents' },
          ]}
        />
      </Card>
      <Modal open={newUser} title={t('newUser')} footer={null} onCancel={() => setNewUser(false)} destroyOnHidden>
        <Form layout="vertical" onFinish={createUser} initialValues={{ role: 'user' }}>
          <Form.Item name="username" label={t('username')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item name="password" label={t('password')} rules={[{ required: true, min: 8 }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Form.Item name="role" label={t('role')} rules={[{ required: true }]}>
            <Select options={(['admin', 'reviewer', 'user', 'institution'] as const).map((r) => ({ value: r, label: t(`role_${r}`) }))} />
          </Form.Item>
          <Form.Item name="tenant" label={t('tenant')}>
            <Input placeholder="bank-a" />
          </Form.Item>
          <Form.Item name="institution_id" label={t('institution')}>
            <Select allowClear options={insts.map((i) => ({ value: i.id, label: i.name }))} />
          </Form.Item>
          <Button type="primary" htmlType="submit">
            {t('save')}
          </Button>
        </Form>
      </Modal>
      <Modal open={newOrg} title={t('newOrganisation')} footer={null} onCancel={() => setNewOrg(false)} destroyOnHidden>
        <Form layout="vertical" onFinish={createOrg} initialValues={{ kind: 'bank' }}>
          <Form.Item name="name" label={t('name')} rules={[{ required: true, max: 200 }]}>
            <Input />
          </Form.Item>
          <Form.Item name="kind" label={t('kind')}>
            <Select options={(['bank', 'enterprise', 'notary', 'court'] as const).map((k) => ({ value: k, label: k }))} />
          </Form.Item>
          <Form.Item name="tenant" label={t('tenant')}>
            <Input placeholder="bank-a" />
          </Form.Item>
          <Form.Item name="institution_id" label={t('institution')}>
            <Input />
          </Form.Item>
          <Form.Item name="fee_cents" label={t('fee')}>
            <InputNumber min={0} />
          </Form.Item>
          <Button type="primary" htmlType="submit">
            {t('save')}
          </Button>
        </Form>
      </Modal>
      <Modal open={newInst} title={t('newInstitution')} footer={null} onCancel={() => setNewInst(false)} destroyOnHidden>
        <Form layout="vertical" onFinish={createInst} initialValues={{ kind: 'notary' }}>
          <Form.Item name="id" label="ID" rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item name="name" label={t('name')} rules={[{ required: true }]}>
            <Input />
          </Form.Item>
          <Form.Item name="kind" label={t('kind')}>
            <Select options={[{ value: 'notary', label: t('kind_notarization') }, { value: 'court', label: t('kind_ruling') }]} />
          </Form.Item>
          <Form.Item name="fee_cents" label={t('fee')}>
            <InputNumber min={0} />
          </Form.Item>
          <Button type="primary" htmlType="submit">
            {t('save')}
          </Button>
        </Form>
      </Modal>
    </Space>
  );
}
