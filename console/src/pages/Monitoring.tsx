import { useEffect, useState } from 'react';
import { Card, Col, Descriptions, Row, Statistic } from 'antd';
import { api, type Schemas } from '../api/client';
import { useI18n } from '../i18n';

/** Block height, counts, services (refreshed every 5 s). */
export function Monitoring() {
  const { t } = useI18n();
  const [s, setS] = useState<Schemas['Summary']>();
  useEffect(() => {
    const load = () => void api.GET('/v1/monitoring/summary').then((r) => r.data && setS(r.data));
    load();
    const timer = window.setInterval(load, 5000);
    return () => window.clearInterval(timer);
  }, []);
  if (!s) return <Card loading />;
  const counts = (o: Record<string, unknown>) =>
    Object.entries(o).map(([k, v]) => (
      <Descriptions.Item key={k} label={k}>
        {String(v)}
      </Descriptions.Item>
    ));
  return (
    <Card title={t('menu_monitoring')}>
      <Row gutter={16}>
        <Col span={6}>
          <Statistic title={t('blockHeight')} value={s.block_height ?? '—'} />
        </Col>
        <Col span={6}>
          <Statistic title="ledger entries" value={s.ledger_entries} />
        </Col>
        <Col span={6}>
          <Statistic title={t('checkpoint')} value={s.checkpoint_size} />
        </Col>
        <Col span={6}>
          <Statistic title={t('anchors')} value={s.anchors} />
        </Col>
      </Row>
      <Descriptions title={t('counts')} bordered size="small" column={2} style={{ marginTop: 24 }}>
        {counts(s.preservations as Record<string, unknown>)}
        {counts(s.contracts as Record<string, unknown>)}
        {counts(s.users as Record<string, unknown>)}
      </Descriptions>
      <Descriptions title={t('health')} bordered size="small" column={2} style={{ marginTop: 24 }}>
        {counts(s.health as unknown as Record<string, unknown>)}
      </Descriptions>
    </Card>
  );
}
