import { useCallback, useEffect, useMemo, useState } from 'react';
import { App as AntApp, ConfigProvider, Spin } from 'antd';
import zhCN from 'antd/locale/zh_CN';
import enUS from 'antd/locale/en_US';
import dayjs from 'dayjs';
import 'dayjs/locale/zh-cn';
import { BrowserRouter, Navigate, Route, Routes } from 'react-router';
import { api, setOnPasswordChangeRequired, setOnUnauthenticated, type Schemas } from './api/client';
import { I18nContext, type Lang, translate } from './i18n';
import { Shell } from './Shell';
import { Login } from './pages/Login';
import { PreservationList } from './pages/PreservationList';
import { PreservationNew } from './pages/PreservationNew';
import { PreservationDetail } from './pages/PreservationDetail';
import { Inbox } from './pages/Inbox';
import { JudicialList } from './pages/JudicialList';
import { JudicialDetail } from './pages/JudicialDetail';
import { Products } from './pages/Products';
import { UsersPage } from './pages/Users';
import { Monitoring } from './pages/Monitoring';
import { AuditLog } from './pages/AuditLog';
import { Contracts } from './pages/Contracts';
import { ContractDetail } from './pages/ContractDetail';
import { Invitation } from './pages/Invitation';
import { Account, ForcedPasswordChange } from './pages/Account';
import { Search } from './pages/Search';
import { ContractTypes } from './pages/ContractTypes';
import { Webhooks } from './pages/Webhooks';
import { SystemLog } from './pages/SystemLog';
import { SessionContext } from './session';
import { cspNonce } from './csp';

type Me = Schemas['Caller'];


/** Ant Design in zero-runtime mode (static antd.css), with colours darker than
 * its defaults where those miss WCAG AA contrast (axe color-contrast): the
 * default primary #1677ff gives 4.1:1 with white text, #0958d9 gives 6:1. */
const THEME = {
  zeroRuntime: true,
  token: {
    colorPrimary: '#0958d9',
    colorPrimaryHover: '#003eb3',
    colorPrimaryActive: '#002c8c',
    colorErrorHover: '#a8071a',
    colorErrorActive: '#820014',
    colorTextPlaceholder: 'rgba(0, 0, 0, 0.6)',
    colorLink: '#0958d9',
    colorError: '#cf1322',
    colorSuccess: '#237804',
    colorWarning: '#ad4e00',
    colorInfo: '#0958d9',
    colorTextDescription: 'rgba(0, 0, 0, 0.62)',
    colorTextTertiary: 'rgba(0, 0, 0, 0.62)',
  },
};

export function homeOf(role: string): string {
  switch (role) {
    case 'admin':
      return '/admin/products';
    case 'reviewer':
      return '/inbox';
    case 'institution':
      return '/judicial';
    case 'signer':
      return '/contracts';
    case 'org_admin':
      return '/org/users';
    default:
      return '/preservations';
  }
}

export function App() {
  const [lang, setLangState] = useState<Lang>(() =>
    localStorage.getItem('anchord.lang') === 'en' ? 'en' : 'zh',
  );
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem('anchord.lang', l);
    setLangState(l);
  }, []);
  useEffect(() => {
    dayjs.locale(lang === 'zh' ? 'zh-cn' : 'en');
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  }, [lang]);
  const i18n = useMemo(() => ({ lang, setLang, t: (k: Parameters<typeof translate>[1]) => translate(lang, k) }), [lang, setLang]);
  const refresh = useCallback(async () => {
    const r = await api.GET('/v1/me');
    setMe(r.response.ok && r.data ? r.data : null);
  }, []);
  useEffect(() => {
    setOnUnauthenticated(() => setMe(null));
    // An administrator reset the password: every route answers 403
    // password_change_required until it is changed; GET /v1/me says so.
    setOnPasswordChangeRequired(() => void refresh());
    void refresh();
  }, [refresh]);
  const nonce = useMemo(() => cspNonce(), []);
  return (
    <I18nContext.Provider value={i18n}>
      <ConfigProvider
        locale={lang === 'zh' ? zhCN : enUS}
        csp={nonce ? { nonce } : undefined}
        // No space put between two CJK characters of a button ("删 除"): a button's
        // visible text stays part of its accessible name (axe label-content-name-mismatch).
        button={{ autoInsertSpace: false }}
        theme={THEME}
      >
        <AntApp>
          <SessionContext.Provider value={{ me: me ?? null, refresh, setMe }}>
            <BrowserRouter>
              <Routes>
                {/* The invited party's page: public (no session needed), and it stays
                    mounted while its visitor registers or signs in. */}
                <Route path="/invitation" element={<Invitation />} />
                <Route path="/invite" element={<Invitation />} />
                <Route
                  path="*"
                  element={
                    me === undefined ? (
                      <div className="anchord-login">
                        <Spin />
                      </div>
                    ) : me === null ? (
                      <Login />
                    ) : me.must_change_password ? (
                      <ForcedPasswordChange />
                    ) : (
                      <Shell>
                        <Routes>
                          <Route path="/" element={<Navigate to={homeOf(me.role)} replace />} />
                          <Route path="/login" element={<Navigate to={homeOf(me.role)} replace />} />
                          <Route path="/preservations" element={<PreservationList />} />
                          <Route path="/preservations/new" element={<PreservationNew />} />
                          <Route path="/preservations/:id" element={<PreservationDetail />} />
                          <Route path="/inbox" element={<Inbox />} />
                          <Route path="/search" element={<Search />} />
                          <Route path="/contracts" element={<Contracts />} />
                          <Route path="/contracts/:id" element={<ContractDetail />} />
                          <Route path="/judicial" element={<JudicialList />} />
                          <Route path="/judicial/:id" element={<JudicialDetail />} />
                          <Route path="/account" element={<Account />} />
                          <Route path="/webhooks" element={<Webhooks />} />
                          <Route path="/admin/products" element={<Products />} />
                          <Route path="/admin/contract-types" element={<ContractTypes />} />
                          <Route path="/admin/users" element={<UsersPage />} />
                          <Route path="/org/users" element={<UsersPage />} />
                          <Route path="/admin/monitoring" element={<Monitoring />} />
                          <Route path="/admin/audit" element={<AuditLog />} />
                          <Route path="/admin/system-log" element={<SystemLog />} />
                          <Route path="*" element={<Navigate to={homeOf(me.role)} replace />} />
                        </Routes>
                      </Shell>
                    )
                  }
                />
              </Routes>
            </BrowserRouter>
          </SessionContext.Provider>
        </AntApp>
      </ConfigProvider>
    </I18nContext.Provider>
  );
}
