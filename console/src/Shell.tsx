import { type ReactNode, useEffect, useState } from 'react';
import { Badge, Button, Layout, Menu, Space, Tag } from 'antd';
import { Link, useLocation, useNavigate } from 'react-router';
import { api } from './api/client';
import { type Key, useI18n } from './i18n';
import { useSession } from './session';

/** The menu of each role (the manual's screens). */
export function menuOf(role: string): { path: string; key: Key }[] {
  switch (role) {
    case 'admin':
      return [
        { path: '/admin/products', key: 'menu_products' },
        { path: '/admin/contract-types', key: 'menu_contract_types' },
        { path: '/admin/users', key: 'menu_users' },
        { path: '/preservations', key: 'menu_preservations' },
        { path: '/contracts', key: 'menu_contracts' },
        { path: '/search', key: 'menu_search' },
        { path: '/judicial', key: 'menu_judicial' },
        { path: '/webhooks', key: 'menu_webhooks' },
        { path: '/admin/monitoring', key: 'menu_monitoring' },
        { path: '/admin/system-log', key: 'menu_system_log' },
        { path: '/admin/audit', key: 'menu_audit' },
      ];
    case 'reviewer':
      return [
        { path: '/inbox', key: 'menu_inbox' },
        { path: '/preservations', key: 'menu_preservations' },
        { path: '/contracts', key: 'menu_contracts' },
        { path: '/search', key: 'menu_search' },
        { path: '/judicial', key: 'menu_judicial' },
        { path: '/webhooks', key: 'menu_webhooks' },
      ];
    case 'institution':
      return [{ path: '/judicial', key: 'menu_queue' }];
    case 'org_admin':
      // An organisation's administrator: its users, nothing else.
      return [{ path: '/org/users', key: 'menu_org_users' }];
    case 'signer':
      // An invited outside party: the contracts they sign, nothing else.
      return [{ path: '/contracts', key: 'menu_contracts' }];
    default:
      return [
        { path: '/inbox', key: 'menu_inbox' },
        { path: '/preservations', key: 'menu_preservations' },
        { path: '/preservations/new', key: 'menu_new_preservation' },
        { path: '/contracts', key: 'menu_contracts' },
        { path: '/search', key: 'menu_search' },
        { path: '/judicial', key: 'menu_judicial' },
      ];
  }
}

export function Shell({ children }: { children: ReactNode }) {
  const { t, lang, setLang } = useI18n();
  const { me, setMe } = useSession();
  const nav = useNavigate();
  const loc = useLocation();
  const [todo, setTodo] = useState<number>();
  useEffect(() => {
    // The to-do count (GET /v1/inbox), refreshed as the user moves around.
    if (me && me.role !== 'admin') void api.GET('/v1/inbox').then((r) => setTodo(r.data?.total), () => setTodo(undefined));
  }, [me, loc.pathname]);
  if (!me) return null;
  const items = menuOf(me.role);
  const inboxPath = me.role === 'institution' ? '/judicial' : me.role === 'signer' ? '/contracts' : '/inbox';
  const selected = items
    .filter((i) => loc.pathname === i.path || loc.pathname.startsWith(`${i.path}/`))
    .sort((a, b) => b.path.length - a.path.length)[0];
  const logout = async () => {
    await api.POST('/v1/auth/logout');
    setMe(null);
    await nav('/');
  };
  return (
    <Layout>
      <Layout.Header className="anchord-header">
        <span className="anchord-logo">{t('appName')}</span>
        <Menu
          theme="dark"
          mode="horizontal"
          selectedKeys={selected ? [selected.path] : []}
          items={items.map((i) => ({
            key: i.path,
            label:
              i.path === inboxPath && todo ? (
                <span>
                  {t(i.key)} <Badge count={todo} size="small" aria-label={`${todo}`} />
                </span>
              ) : (
                t(i.key)
              ),
          }))}
          onClick={(e) => nav(e.key)}
        />
        <Space>
          <a href="/verify/" target="_blank" rel="noopener">
            {t('verifyPage')}
          </a>
          <Link className="anchord-user" to="/account" title={t('menu_account')}>
            {me.username} <Tag>{t(`role_${me.role}` as Key)}</Tag>
          </Link>
          <Button size="small" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')}>
            {t('language')}
          </Button>
          <Button size="small" onClick={logout}>
            {t('logout')}
          </Button>
        </Space>
      </Layout.Header>
      <Layout.Content className="anchord-content">
        <main>{children}</main>
      </Layout.Content>
    </Layout>
  );
}
