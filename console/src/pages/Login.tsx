import { useState } from 'react';
import { Alert, Button, Card, Form, Input, Space } from 'antd';
import { api, errorText } from '../api/client';
import { useI18n } from '../i18n';
import { useSession } from '../session';

export function Login() {
  const { t, lang, setLang } = useI18n();
  const { refresh } = useSession();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const onFinish = async (v: { username: string; password: string }) => {
    setBusy(true);
    setError(undefined);
    // The client sends X-Anchord-CSRF: the session comes back as an HttpOnly cookie.
    const r = await api.POST('/v1/auth/login', { body: v });
    setBusy(false);
    if (r.response.ok) {
      await refresh();
    } else {
      setError(r.response.status === 401 ? t('loginFailed') : errorText(r.error));
    }
  };
  return (
    <main className="anchord-login">
      <Card title={<h1 className="anchord-login-title">{t('appName')}</h1>} extra={<Button size="small" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')}>{t('language')}</Button>}>
        <Form layout="vertical" onFinish={onFinish} requiredMark={false}>
          <Form.Item label={t('username')} name="username" rules={[{ required: true }]}>
            <Input autoComplete="username" id="username" />
          </Form.Item>
          <Form.Item label={t('password')} name="password" rules={[{ required: true }]}>
            <Input.Password autoComplete="current-password" id="password" />
          </Form.Item>
          {error && <Alert type="error" title={error} showIcon className="anchord-login-error" />}
          <Space>
            <Button type="primary" htmlType="submit" loading={busy}>
              {t('login')}
            </Button>
            <a href="/verify/">{t('verifyPage')}</a>
          </Space>
        </Form>
      </Card>
    </main>
  );
}
