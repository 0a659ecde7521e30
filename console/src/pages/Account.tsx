import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Checkbox, Descriptions, Form, Input, Space, Upload, message } from 'antd';
import { api, errorText, must, type Schemas } from '../api/client';
import { useI18n } from '../i18n';
import { useSession } from '../session';
import { registerKey } from '../sign/flow';
import { fingerprint, forgetKey, generateKey, heldKey, type HeldKey, importKeyFile, KeyFileError } from '../sign/keys';
import { fail, failText, Mono, NewPasswordFields } from './common';

/** Change one's own password (PUT /v1/me/password): the current one, the new one twice. */
export function PasswordForm({ onDone }: { onDone?: () => Promise<void> | void }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const finish = async (v: { current_password: string; new_password: string }) => {
    setBusy(true);
    setError(undefined);
    const r = await api.PUT('/v1/me/password', { body: { current_password: v.current_password, new_password: v.new_password } });
    setBusy(false);
    if (!r.response.ok) {
      setError(errorText(r.error));
      return;
    }
    form.resetFields();
    void message.success(t('passwordChanged'));
    await onDone?.();
  };
  return (
    <Form form={form} layout="vertical" onFinish={finish} style={{ maxWidth: 420 }}>
      <Form.Item name="current_password" label={t('currentPassword')} rules={[{ required: true }]}>
        <Input.Password autoComplete="current-password" />
      </Form.Item>
      <NewPasswordFields name="new_password" label={t('newPassword')} />
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
      <Button type="primary" htmlType="submit" loading={busy}>
        {t('changePassword')}
      </Button>
    </Form>
  );
}

/** After an administrator's reset every route answers 403 password_change_required:
 * the console shows only this screen (and sign out) until the password is changed. */
export function ForcedPasswordChange() {
  const { t, lang, setLang } = useI18n();
  const { me, refresh, setMe } = useSession();
  return (
    <main className="anchord-login">
      <Card
        style={{ width: 480 }}
        title={<h1 className="anchord-login-title">{t('changePassword')}</h1>}
        extra={
          <Space>
            <Button size="small" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')}>
              {t('language')}
            </Button>
            <Button
              size="small"
              onClick={async () => {
                await api.POST('/v1/auth/logout');
                setMe(null);
              }}
            >
              {t('logout')}
            </Button>
          </Space>
        }
      >
        <Alert type="warning" showIcon title={t('passwordChangeRequired')} description={me?.username} style={{ marginBottom: 16 }} />
        <PasswordForm onDone={refresh} />
      </Card>
    </main>
  );
}

type Notifications = Schemas['Notifications'];

/** E-mail notification preferences (GET/PUT /v1/me/notifications). */
function NotificationSettings() {
  const { t } = useI18n();
  const [n, setN] = useState<Notifications>();
  const [form] = Form.useForm();
  const load = useCallback(async () => {
    const r = await api.GET('/v1/me/notifications');
    if (r.data) {
      setN(r.data);
      form.setFieldsValue({ email: r.data.email ?? '', events: Object.keys(r.data.events).filter((k) => r.data.events[k]) });
    }
  }, [form]);
  useEffect(() => {
    void load();
  }, [load]);
  if (!n) return <Card title={t('notifications')} loading />;
  const save = async (v: { email?: string; events?: string[] }) => {
    const on = new Set(v.events ?? []);
    try {
      const r = await must(
        api.PUT('/v1/me/notifications', {
          body: { email: v.email?.trim() ? v.email.trim() : null, events: Object.fromEntries(Object.keys(n.events).map((k) => [k, on.has(k)])) },
        }),
      );
      setN(r);
      void message.success(t('saved'));
    } catch (e) {
      fail(e);
    }
  };
  return (
    <Card title={t('notifications')}>
      {!n.mail_enabled && <Alert type="info" showIcon title={t('mailDisabled')} style={{ marginBottom: 16 }} />}
      <Form form={form} layout="vertical" onFinish={save} style={{ maxWidth: 640 }}>
        <Form.Item name="email" label={t('email')} rules={[{ type: 'email', max: 254 }]}>
          <Input type="email" autoComplete="email" />
        </Form.Item>
        <Form.Item name="events" label={t('notifyAbout')}>
          <Checkbox.Group options={Object.keys(n.events).map((k) => ({ value: k, label: n.descriptions[k] ?? k }))} style={{ display: 'flex', flexDirection: 'column', gap: 8 }} />
        </Form.Item>
        <Button type="primary" htmlType="submit">
          {t('save')}
        </Button>
      </Form>
    </Card>
  );
}

function saveFile(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The signing key held in this browser: its fingerprint; make, import, register, forget. */
function BrowserKey() {
  const { t } = useI18n();
  const { me } = useSession();
  const [key, setKey] = useState<HeldKey | null>();
  const [fp, setFp] = useState<string>();
  const [error, setError] = useState<string>();
  const load = useCallback(async () => {
    if (!me) return;
    try {
      const k = (await heldKey(me.id)) ?? null;
      setKey(k);
      setFp(k ? await fingerprint(k.publicKey) : undefined);
    } catch (e) {
      setError(failText(e));
    }
  }, [me]);
  useEffect(() => {
    void load();
  }, [load]);
  // Only bank users, reviewers and outside signers sign contracts.
  if (!me || !['user', 'reviewer', 'signer'].includes(me.role)) return null;
  const act = async (f: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await f();
      await load();
    } catch (e) {
      setError(e instanceof KeyFileError ? t('keyFileInvalid') : failText(e));
    }
  };
  const make = (backup: boolean) =>
    act(async () => {
      const { key: k, backupFile } = await generateKey(me.id, backup);
      if (backupFile) saveFile(`anchord-signing-key-${me.username}.txt`, backupFile);
      await registerKey(me, k);
    });
  return (
    <Card title={t('browserKey')}>
      <Space direction="vertical" style={{ width: '100%' }}>
        <Alert type="info" showIcon title={t('browserKeyHint')} />
        {error && <Alert type="error" showIcon title={error} />}
        {key ? (
          <Descriptions bordered column={1} size="small">
            <Descriptions.Item label={t('publicKey')}>
              <Mono>{key.publicKey}</Mono>
            </Descriptions.Item>
            <Descriptions.Item label={t('fingerprint')}>
              <Mono>{fp}</Mono>
            </Descriptions.Item>
            <Descriptions.Item label={t('status')}>{key.registered ? t('keyRegistered') : t('keyNotRegistered')}</Descriptions.Item>
          </Descriptions>
        ) : (
          key === null && <span>{t('noBrowserKey')}</span>
        )}
        <Space wrap>
          <Button onClick={() => make(false)}>{t('keyGenerate')}</Button>
          <Button onClick={() => make(true)}>{t('keyGenerateBackup')}</Button>
          <Upload
            accept=".txt,.key,.hex"
            showUploadList={false}
            beforeUpload={(file) => {
              void act(async () => registerKey(me, await importKeyFile(me.id, await file.text())));
              return false;
            }}
          >
            <Button>{t('keyImport')}</Button>
          </Upload>
          {key && !key.registered && <Button onClick={() => act(() => registerKey(me, key))}>{t('keyRegister')}</Button>}
          {key && (
            <Button danger onClick={() => act(() => forgetKey(me.id))}>
              {t('keyForget')}
            </Button>
          )}
        </Space>
      </Space>
    </Card>
  );
}

/** The user's own settings: password, e-mail notifications, the browser-held key. */
export function Account() {
  const { t } = useI18n();
  const { me } = useSession();
  return (
    <Space direction="vertical" style={{ width: '100%' }} size="large">
      <Card title={t('menu_account')}>
        <Descriptions column={1} size="small" style={{ marginBottom: 16 }}>
          <Descriptions.Item label={t('username')}>{me?.username}</Descriptions.Item>
          <Descriptions.Item label={t('tenant')}>{me?.tenant ?? me?.institution_id ?? '—'}</Descriptions.Item>
        </Descriptions>
        <h2 className="anchord-h2">{t('changePassword')}</h2>
        <PasswordForm />
      </Card>
      <NotificationSettings />
      <BrowserKey />
    </Space>
  );
}
