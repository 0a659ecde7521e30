import { PreservationList } from './PreservationList';
import { useI18n } from '../i18n';

/** The reviewer's to-do inbox: submitted preservations of their bank. */
export function Inbox() {
  const { t } = useI18n();
  return <PreservationList fixedStatus="submitted" title={t('menu_inbox')} />;
}
