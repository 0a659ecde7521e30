import { useEffect, useState } from 'react';
import { Card, Col, Descriptions, Row, Statistic, Table, Tag } from 'antd';
import { api, type Schemas } from '../api/client';
import { useI18n } from '../i18n';

/** Block height, counts, services (refreshed every 5 s). */
export function Monitoring() {
  const { t } = useI18n();
  const [s, setS] = useState<Schemas['Summary']>();
  const [instances, setInstances] = useState<Schemas['InstanceJson'][]>([]);
  useEffect(() => {
    const load = () => {
      void api.GET('/v1/monitoring/summary').then((r) => r.data && setS(r.data));
      void api.GET('/v1/monitoring/instances').then((r) => r.data && setInstances(r.data));
    };
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
        {counts(s.preservations)}
        {counts(s.contracts)}
        {counts(s.users)}
      </Descriptions>
      <Descriptions title={t('health')} bordered size="small" column={2} style={{ marginTop: 24 }}>
        {counts(s.health)}
      </Descriptions>
      <h2 style={{ fontSize: 16, marginTop: 24 }}>{t('instances')}</h2>
      <Table<Schemas['InstanceJson']>
        rowKey="address"
        size="small"
        pagination={false}
        dataSource={instances}
        columns={[
          { title: t('address'), dataIndex: 'address' },
          { title: t('status'), render: (_, i) => <Tag className={`anchord-status anchord-status-${i.ready ? 'ok' : 'error'}`}>{String(i.status)}</Tag> },
          { title: 'CPU %', dataIndex: 'cpu_percent', render: (v: number | null) => (v == null ? '—' : v.toFixed(1)) },
          { title: t('memory'), dataIndex: 'memory_bytes', render: (v: number | null) => (v == null ? '—' : `${(v / 1024 / 1024).toFixed(0)} MiB`) },
          { title: t('uptime'), dataIndex: 'uptime_s', render: (v: number | null) => (v == null ? '—' : `${Math.round(v)} s`) },
          { title: t('problem'), dataIndex: 'problem' },
        ]}
      />
    </Card>
  );
}
