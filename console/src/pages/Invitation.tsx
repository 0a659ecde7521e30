import { useEffect, useState } from 'react';
import { Alert, Button, Card, Descriptions, Form, Input, Space, Tabs } from 'antd';
import { useNavigate } from 'react-router';
import { api, errorText, must, type Schemas } from '../api/client';
import { useI18n } from '../i18n';
import { useSession } from '../session';
import { invitationToken } from '../util';
import { failText, NewPasswordFields } from './common';

type Preview = Schemas['InvitationPreviewJson'];


/**
 * The invited party's page (public: no session needed). It shows what the
 * invitation opens, then the invitee registers an outside signer's account with it,
 * or signs in with an account they have and takes the slot, and reaches the
 * contract to sign.
 */
export function Invitation() {
  const { t, lang, setLang } = useI18n();
  const { me, refresh } = useSession();
  const nav = useNavigate();
  const [token] = useState(() => invitationToken(window.location.hash));
  const [preview, setPreview] = useState<Preview>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!token) return;
    void api.POST('/v1/invitations/preview', { body: { token } }).then((r) => {
      if (r.data) setPreview(r.data);
      else setError(r.response.status === 404 ? t('invitationUnknown') : r.response.status === 409 ? t('invitationUsed') : errorText(r.error));
    });
  }, [token, t]);
  const open = async (contractId: number) => {
    await refresh();
    // The token has done its work: keep it out of the history.
    window.history.replaceState(null, '', '/invitation');
    await nav(`/contracts/${contractId}`);
  };
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await f();
    } catch (e) {
      setError(failText(e));
    } finally {
      setBusy(false);
    }
  };
  const register = ({ username, password }: { username: string; password: string }) =>
    run(async () => {
      if (!token || !preview) return;
      await must(api.POST('/v1/invitations/register', { body: { token, username, password } }));
      const l = await api.POST('/v1/auth/login', { body: { username, password } });
      if (!l.response.ok) throw new Error(errorText(l.error));
      await open(preview.contract_id);
    });
  const signInAndAccept = ({ username, password }: { username: string; password: string }) =>
    run(async () => {
      if (!token || !preview) return;
      const l = await api.POST('/v1/auth/login', { body: { username, password } });
      if (!l.response.ok) throw new Error(l.response.status === 401 ? t('loginFailed') : errorText(l.error));
      await must(api.POST('/v1/invitations/accept', { body: { token } }));
      await open(preview.contract_id);
    });
  const accept = () =>
    run(async () => {
      if (!token || !preview) return;
      await must(api.POST('/v1/invitations/accept', { body: { token } }));
      await open(preview.contract_id);
    });
  return (
    <main className="anchord-login">
      <Card
        style={{ width: 560 }}
        title={<h1 className="anchord-login-title">{t('invitationTitle')}</h1>}
        extra={
          <Button size="small" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')}>
            {t('language')}
          </Button>
        }
      >
        <Space direction="vertical" style={{ width: '100%' }}>
          {!token && <Alert type="error" showIcon title={t('invitationMalformed')} />}
          {error && <Alert type="error" showIcon title={error} className="anchord-invitation-error" />}
          {preview && (
            <>
              <Descriptions bordered column={1} size="small">
                <Descriptions.Item label={t('number')}>{preview.number}</Descriptions.Item>
                <Descriptions.Item label={t('contractTitle')}>{preview.title}</Descriptions.Item>
                <Descriptions.Item label={t('initiatingBank')}>{preview.tenant}</Descriptions.Item>
                <Descriptions.Item label={t('invitedAs')}>{preview.email ?? preview.phone ?? ''}</Descriptions.Item>
              </Descriptions>
              {me ? (
                <Space direction="vertical">
                  <span>
                    {t('invitationAcceptAs')} <strong>{me.username}</strong>
                  </span>
                  <Button type="primary" loading={busy} onClick={accept}>
                    {t('invitationAccept')}
                  </Button>
                </Space>
              ) : (
                <Tabs
                  items={[
                    {
                      key: 'register',
                      label: t('invitationRegister'),
                      children: (
                        <Form layout="vertical" name="invite-register" onFinish={register} requiredMark={false}>
                          <Form.Item name="username" label={t('username')} rules={[{ required: true, pattern: /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, message: t('usernameRule') }]}>
                            <Input autoComplete="username" />
                          </Form.Item>
                          <NewPasswordFields name="password" label={t('password')} />
                          <Button type="primary" htmlType="submit" loading={busy}>
                            {t('invitationRegisterSubmit')}
                          </Button>
                        </Form>
                      ),
                    },
                    {
                      key: 'login',
                      label: t('invitationHaveAccount'),
                      children: (
                        <Form layout="vertical" name="invite-login" onFinish={signInAndAccept} requiredMark={false}>
                          <Form.Item name="username" label={t('username')} rules={[{ required: true }]}>
                            <Input autoComplete="username" />
                          </Form.Item>
                          <Form.Item name="password" label={t('password')} rules={[{ required: true }]}>
                            <Input.Password autoComplete="current-password" />
                          </Form.Item>
                          <Button type="primary" htmlType="submit" loading={busy}>
                            {t('invitationLoginSubmit')}
                          </Button>
                        </Form>
                      ),
                    },
                  ]}
                />
              )}
            </>
          )}
        </Space>
      </Card>
    </main>
  );
}
