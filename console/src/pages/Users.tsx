import { useCallback, useEffect, useState } from 'react';
import { Button, Card, Checkbox, Descriptions, Form, Input, InputNumber, Popconfirm, Select, Space, Table, Tag, message } from 'antd';
import { api, must, type Schemas } from '../api/client';
import { localTime, type Key, useI18n } from '../i18n';
import { useSession } from '../session';
import { ContactFields, fail, FormModal, ListCard, usePaged } from './common';

type U = Schemas['UserJson'];
type I = Schemas['Institution'];
type O = Schemas['OrganisationJson'];
type OrgKind = 'bank' | 'enterprise' | 'notary' | 'court';
// `org_admin` (H17, docs/workflow-api.md "Organisation administrators") is spelled
// out so the console builds against an OpenAPI document with or without it.
type Role = Schemas['Role'] | 'org_admin';
type ApiRole = Schemas['Role'];
/** A role as the generated client types it (the same once the document has org_admin). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
const apiRole = (r: Role) => r as ApiRole;

/** The roles a user of an organisation may hold (docs/workflow-api.md "Roles"): a
 * bank's or enterprise's, or a notary office's or court's. */
export function rolesOf(u: { tenant?: string | null; institution_id?: string | null }): Role[] {
  if (u.tenant) return ['user', 'reviewer', 'org_admin'];
  if (u.institution_id) return ['institution', 'org_admin'];
  return [];
}
const ORG_KINDS: OrgKind[] = ['bank', 'enterprise', 'notary', 'court'];

interface NewUser {
  username: string;
  password: string;
  role: Role;
  tenant?: string;
  institution_id?: string;
  email?: string;
  display_name?: string;
}
interface UserEdit {
  role?: Role;
  email?: string;
  display_name?: string;
}
interface Reset {
  new_password: string;
  must_change: boolean;
}

const fetchUsers = (q: { organisation_id?: number }, after: number | undefined) => api.GET('/v1/users', { params: { query: { ...q, limit: 50, ...(after ? { after } : {}) } } });

/** An optional text: empty clears it (`null`). */
const orNull = (v: string | undefined) => (v?.trim() ? v.trim() : null);

/** Organisations, users and institutions: create; users edited (role, e-mail, name),
 * disabled or enabled, their password reset, their sessions revoked. An
 * organisation's administrator (org_admin) sees its users only. */
export function UsersPage() {
  const { t, lang } = useI18n();
  const { me } = useSession();
  const platform = me?.role === 'admin';
  const [own, setOwn] = useState<O>();
  const users = usePaged(fetchUsers, {});
  const [insts, setInsts] = useState<I[]>([]);
  const [orgs, setOrgs] = useState<O[]>([]);
  const [dialog, setDialog] = useState<'user' | 'org' | 'inst'>();
  const [editing, setEditing] = useState<U>();
  const [resetting, setResetting] = useState<U>();
  const [renaming, setRenaming] = useState<O>();
  const [orgFilter, setOrgFilter] = useState<number>();
  const orgId = me?.organisation_id;
  const load = useCallback(async () => {
    if (!platform) {
      if (orgId) {
        const r = await api.GET('/v1/organisations/{id}', { params: { path: { id: orgId } } });
        if (r.data) setOwn(r.data);
      }
      return;
    }
    const [i, o] = await Promise.all([api.GET('/v1/institutions'), api.GET('/v1/organisations')]);
    if (o.data) setOrgs(o.data);
    if (i.data) setInsts(i.data);
  }, [platform, orgId]);
  useEffect(() => {
    void load();
  }, [load]);
  const reloadAll = async () => {
    await Promise.all([load(), users.reload()]);
  };
  const act = async (f: () => Promise<unknown>, done?: string) => {
    try {
      await f();
      if (done) void message.success(done);
      await reloadAll();
    } catch (e) {
      fail(e);
    }
  };
  const createUser = async (v: NewUser) => {
    await must(api.POST('/v1/users', { body: { ...v, role: apiRole(v.role), email: orNull(v.email), display_name: orNull(v.display_name) } }));
    await reloadAll();
  };
  const createInst = async (v: { id: string; name: string; kind: 'notary' | 'court'; fee_cents?: number }) => {
    await must(api.POST('/v1/institutions', { body: v }));
    await reloadAll();
  };
  const createOrg = async (v: { name: string; kind: OrgKind; tenant?: string; institution_id?: string; fee_cents?: number }) => {
    await must(api.POST('/v1/organisations', { body: v }));
    await reloadAll();
  };
  const editUser = async (v: UserEdit) => {
    if (!editing) return;
    const movable = rolesOf(editing).includes(editing.role);
    await must(
      api.PATCH('/v1/users/{id}', {
        params: { path: { id: editing.id } },
        body: { email: orNull(v.email), display_name: orNull(v.display_name), ...(movable && v.role && v.role !== editing.role ? { role: apiRole(v.role) } : {}) },
      }),
    );
    await users.reload();
  };
  const resetPassword = async (v: Reset) => {
    if (!resetting) return;
    await must(api.PUT('/v1/users/{id}/password', { params: { path: { id: resetting.id } }, body: { new_password: v.new_password, must_change: v.must_change } }));
    void message.success(t('passwordReset'));
    await users.reload();
  };
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      {!platform && own && (
        <Card title={t('myOrganisation')}>
          <Descriptions column={1} size="small">
            <Descriptions.Item label={t('name')}>{own.name}</Descriptions.Item>
            <Descriptions.Item label={t('kind')}>{t(`org_${own.kind}` as Key)}</Descriptions.Item>
            <Descriptions.Item label={t('tenant')}>{own.tenant ?? own.institution_id ?? ''}</Descriptions.Item>
          </Descriptions>
        </Card>
      )}
      {platform && (
      <ListCard title={t('organisations')} createText={t('newOrganisation')} onCreate={() => setDialog('org')}>
        <Table<O>
          rowKey="id"
          size="small"
          pagination={false}
          dataSource={orgs}
          columns={[
            { title: t('name'), dataIndex: 'name' },
            { title: t('kind'), dataIndex: 'kind', render: (v: string) => t(`org_${v}` as Key) },
            { title: t('tenant'), render: (_, o) => o.tenant ?? o.institution_id ?? '' },
            { title: t('users_count'), dataIndex: 'users' },
            { title: t('enabled'), dataIndex: 'enabled', render: (v: boolean) => (v ? t('yes') : t('no')) },
            {
              title: t('actions'),
              render: (_, o) => (
                <Space size={4} wrap>
                  <Button size="small" onClick={() => setRenaming(o)} aria-label={`${t('edit')} ${o.name}`}>
                    {t('edit')}
                  </Button>
                  <Button
                    size="small"
                    onClick={() => {
                      setOrgFilter(o.id);
                      users.search({ organisation_id: o.id });
                    }}
                    aria-label={`${t('users')} ${o.name}`}
                  >
                    {t('users')}
                  </Button>
                  <Button
                    size="small"
                    aria-label={`${o.enabled ? t('disable') : t('enable')} ${o.name}`}
                    onClick={() =>
                      act(() =>
                        o.enabled
                          ? must(api.POST('/v1/organisations/{id}/disable', { params: { path: { id: o.id } } }))
                          : must(api.POST('/v1/organisations/{id}/enable', { params: { path: { id: o.id } } })),
                      )
                    }
                  >
                    {o.enabled ? t('disable') : t('enable')}
                  </Button>
                </Space>
              ),
            },
          ]}
        />
      </ListCard>
      )}
      <ListCard
        title={
          <Space>
            {t('users')}
            {orgFilter !== undefined && (
              <Tag
                closable
                onClose={() => {
                  setOrgFilter(undefined);
                  users.search({});
                }}
              >
                {orgs.find((o) => o.id === orgFilter)?.name ?? orgFilter}
              </Tag>
            )}
          </Space>
        }
        createText={t('newUser')}
        onCreate={() => setDialog('user')}
      >
        <Table<U>
          rowKey="id"
          size="small"
          loading={users.loading}
          pagination={false}
          dataSource={users.rows}
          columns={[
            { title: t('username'), dataIndex: 'username' },
            { title: t('displayName'), dataIndex: 'display_name' },
            { title: t('role'), dataIndex: 'role', render: (v: string) => t(`role_${v}` as Key) },
            { title: t('tenant'), render: (_, u) => u.tenant ?? u.institution_id ?? '' },
            { title: t('email'), dataIndex: 'email' },
            {
              title: t('status'),
              render: (_, u) => (
                <Space size={4} wrap>
                  {u.disabled_at ? <Tag>{t('disabled')}</Tag> : <Tag>{t('enabled')}</Tag>}
                  {u.must_change_password && <Tag>{t('mustChange')}</Tag>}
                  {u.locked_until && new Date(u.locked_until) > new Date() && <Tag>{t('locked')}</Tag>}
                </Space>
              ),
            },
            { title: t('createdAt'), dataIndex: 'created_at', render: (v: string) => localTime(lang, v) },
            {
              title: t('actions'),
              render: (_, u) => (
                <Space size={4} wrap>
                  <Button size="small" onClick={() => setEditing(u)} aria-label={`${t('edit')} ${u.username}`}>
                    {t('edit')}
                  </Button>
                  <Button size="small" onClick={() => setResetting(u)} aria-label={`${t('resetPassword')} ${u.username}`}>
                    {t('resetPassword')}
                  </Button>
                  <Popconfirm
                    title={t('confirmRevoke')}
                    okText={t('revokeSessions')}
                    cancelText={t('cancel')}
                    onConfirm={() =>
                      act(async () => {
                        const r = await must(api.DELETE('/v1/users/{id}/sessions', { params: { path: { id: u.id } } }));
                        void message.success(`${t('sessionsRevoked')}: ${r.revoked}`);
                      })
                    }
                  >
                    <Button size="small" aria-label={`${t('revokeSessions')} ${u.username}`}>
                      {t('revokeSessions')}
                    </Button>
                  </Popconfirm>
                  {u.id !== me?.id && (
                    <Button
                      size="small"
                      danger={!u.disabled_at}
                      aria-label={`${u.disabled_at ? t('enable') : t('disable')} ${u.username}`}
                      onClick={() =>
                        act(() =>
                          u.disabled_at
                            ? must(api.POST('/v1/users/{id}/enable', { params: { path: { id: u.id } } }))
                            : must(api.POST('/v1/users/{id}/disable', { params: { path: { id: u.id } } })),
                        )
                      }
                    >
                      {u.disabled_at ? t('enable') : t('disable')}
                    </Button>
                  )}
                </Space>
              ),
            },
          ]}
        />
        {users.pager}
      </ListCard>
      {platform && (
      <ListCard title={t('institutions')} createText={t('newInstitution')} onCreate={() => setDialog('inst')}>
        <Table<I>
          rowKey="id"
          size="small"
          pagination={false}
          dataSource={insts}
          columns={[
            { title: 'ID', dataIndex: 'id' },
            { title: t('name'), dataIndex: 'name' },
            { title: t('kind'), dataIndex: 'kind', render: (v: string) => t(`org_${v}` as Key) },
            { title: t('fee'), dataIndex: 'fee_cents' },
          ]}
        />
      </ListCard>
      )}
      <FormModal<NewUser> open={dialog === 'user'} title={t('newUser')} onClose={() => setDialog(undefined)} onSubmit={createUser} initialValues={{ role: own?.institution_id ? 'institution' : 'user' }}>
        <Form.Item name="username" label={t('username')} rules={[{ required: true, max: 64 }]}>
          <Input autoComplete="off" />
        </Form.Item>
        <Form.Item name="password" label={t('password')} rules={[{ required: true, min: 8, max: 256 }]} extra={t('passwordRule')}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item name="role" label={t('role')} rules={[{ required: true }]}>
          <Select options={(platform ? (['admin', 'reviewer', 'user', 'institution'] as const) : own ? rolesOf(own) : []).map((r) => ({ value: r, label: t(`role_${r}`) }))} />
        </Form.Item>
        {platform && (
          <>
            <Form.Item name="tenant" label={t('tenant')}>
              <Input placeholder="bank-a" />
            </Form.Item>
            <Form.Item name="institution_id" label={t('institution')}>
              <Select allowClear options={insts.map((i) => ({ value: i.id, label: i.name }))} />
            </Form.Item>
          </>
        )}
        <ContactFields />
      </FormModal>
      <FormModal<UserEdit>
        key={`edit-${editing?.id}`}
        open={!!editing}
        title={`${t('editUser')} · ${editing?.username ?? ''}`}
        onClose={() => setEditing(undefined)}
        onSubmit={editUser}
        initialValues={{ role: editing?.role as Role, email: editing?.email ?? '', display_name: editing?.display_name ?? '' }}
      >
        {editing && rolesOf(editing).includes(editing.role) && (
          <Form.Item name="role" label={t('role')} extra={t('roleChangeHint')}>
            <Select options={rolesOf(editing).map((r) => ({ value: r, label: t(`role_${r}`) }))} />
          </Form.Item>
        )}
        <ContactFields />
      </FormModal>
      <FormModal<Reset>
        key={`reset-${resetting?.id}`}
        open={!!resetting}
        title={`${t('resetPassword')} · ${resetting?.username ?? ''}`}
        onClose={() => setResetting(undefined)}
        onSubmit={resetPassword}
        initialValues={{ must_change: true }}
        danger
      >
        <Form.Item name="new_password" label={t('newPassword')} rules={[{ required: true, min: 8, max: 256 }]} extra={t('passwordRule')}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item name="must_change" valuePropName="checked">
          <Checkbox>{t('mustChangeAtLogin')}</Checkbox>
        </Form.Item>
      </FormModal>
      <FormModal<{ name: string; fee_cents?: number }>
        key={`org-${renaming?.id}`}
        open={!!renaming}
        title={`${t('edit')} · ${renaming?.name ?? ''}`}
        onClose={() => setRenaming(undefined)}
        onSubmit={async (v) => {
          if (!renaming) return;
          const inst = renaming.kind === 'notary' || renaming.kind === 'court';
          await must(api.PATCH('/v1/organisations/{id}', { params: { path: { id: renaming.id } }, body: { name: v.name, ...(inst ? { fee_cents: v.fee_cents ?? null } : {}) } }));
          await reloadAll();
        }}
        initialValues={{ name: renaming?.name, fee_cents: renaming?.fee_cents ?? undefined }}
      >
        <Form.Item name="name" label={t('name')} rules={[{ required: true, max: 200 }]}>
          <Input />
        </Form.Item>
        {(renaming?.kind === 'notary' || renaming?.kind === 'court') && (
          <Form.Item name="fee_cents" label={t('fee')}>
            <InputNumber min={0} />
          </Form.Item>
        )}
      </FormModal>
      <FormModal<{ name: string; kind: OrgKind; tenant?: string; institution_id?: string; fee_cents?: number }>
        open={dialog === 'org'}
        title={t('newOrganisation')}
        onClose={() => setDialog(undefined)}
        onSubmit={createOrg}
        initialValues={{ kind: 'bank' }}
      >
        <Form.Item name="name" label={t('name')} rules={[{ required: true, max: 200 }]}>
          <Input />
        </Form.Item>
        <Form.Item name="kind" label={t('kind')}>
          <Select options={ORG_KINDS.map((k) => ({ value: k, label: t(`org_${k}`) }))} />
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
      </FormModal>
      <FormModal<{ id: string; name: string; kind: 'notary' | 'court'; fee_cents?: number }>
        open={dialog === 'inst'}
        title={t('newInstitution')}
        onClose={() => setDialog(undefined)}
        onSubmit={createInst}
        initialValues={{ kind: 'notary' }}
      >
        <Form.Item name="id" label="ID" rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="name" label={t('name')} rules={[{ required: true }]}>
          <Input />
        </Form.Item>
        <Form.Item name="kind" label={t('kind')}>
          <Select options={[{ value: 'notary', label: t('org_notary') }, { value: 'court', label: t('org_court') }]} />
        </Form.Item>
        <Form.Item name="fee_cents" label={t('fee')}>
          <InputNumber min={0} />
        </Form.Item>
      </FormModal>
    </Space>
  );
}
