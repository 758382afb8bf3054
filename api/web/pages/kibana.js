// Kibana (analyst+): the configured Kibana dashboard in a frame, or what to configure when there
// is none. The page's security policy lets frames come from that Kibana only.

export default async function kibana(view, ui) {
  const { el } = ui;
  const url = ui.kibana?.dashboard_url;
  view.append(el('div', { class: 'page-head' }, el('h1', {}, 'Kibana'),
    url ? el('a', { href: url, target: '_blank', rel: 'noopener' }, 'Open in Kibana ↗') : null));
  if (!url) {
    view.append(el('section', { class: 'card', id: 'kibana-missing' },
      el('p', { class: 'notice' }, 'No Kibana dashboard is configured for this Sluice.'),
      el('p', {}, 'Kibana reads the events from Elasticsearch, so it needs Sluice to store them there (',
        el('code', {}, 'store.url = "http://…:9200"'), '). Then:'),
      el('ol', {},
        el('li', {}, 'Set ', el('code', {}, 'kibana.url'), ' (or ', el('code', {}, 'SLUICE_KIBANA__URL'), ') to your Kibana, and run ',
          el('code', {}, 'sluice setup'), ' once: it imports the Sluice data view, visualisations and the “Sluice overview” dashboard.'),
        el('li', {}, 'Restart Sluice. This page then shows that dashboard. If browsers reach Kibana at another address than Sluice does, set ',
          el('code', {}, 'kibana.dashboard_url'), ' (', el('code', {}, 'SLUICE_KIBANA__DASHBOARD_URL'), ') to the address of the dashboard.')),
      el('p', { class: 'muted' }, 'Kibana must allow being framed by this site: in kibana.yml, ',
        el('code', {}, 'server.securityResponseHeaders.disableEmbedding: false'), ' (the default).')));
    return;
  }
  view.append(el('iframe', {
    class: 'kibana-frame',
    id: 'kibana-frame',
    src: url,
    title: 'Kibana dashboard',
    referrerpolicy: 'no-referrer',
  }));
}
