// The offline page of an evidence package (index.html at the root of the export zip). The user
// picks the unzipped folder; every file is read in the browser, and the evidence core checks the
// chain, the manifest's signature and every segment's hash before it plays, exactly as the
// server's replay page does. A classic script: no modules, no network.

(function () {
  'use strict';

  const E = globalThis.TakanEvidence;
  const LANGS = ['zh-CN', 'en'];
  let lang = pickLang();
  let source = null;
  let view = null;

  function pickLang() {
    const fromUrl = new URLSearchParams(location.search).get('lang');
    if (LANGS.includes(fromUrl)) return fromUrl;
    return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh-CN' : navigator.language ? 'en' : 'zh-CN';
  }

  function t(key, params) {
    const text = E.STRINGS[lang][key] ?? E.STRINGS['zh-CN'][key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (params && name in params ? String(params[name]) : `{${name}}`));
  }

  function translate() {
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    document.getElementById('lang-toggle').textContent = lang === 'en' ? '中文' : 'English';
  }

  function fail(text) {
    const box = document.getElementById('offline-error');
    box.textContent = text;
    box.hidden = !text;
  }

  function listInspections() {
    const list = document.getElementById('inspection-list');
    list.replaceChildren();
    for (const id of source.inspectionIds()) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'btn primary';
      button.dataset.inspectionId = id;
      button.dataset.i18n = 'offline.replay';
      button.textContent = t('offline.replay');
      button.addEventListener('click', () => replay(id));
      const code = document.createElement('span');
      code.className = 'mono';
      code.textContent = ` ${id} `;
      const item = document.createElement('li');
      item.dataset.inspectionId = id;
      item.append(code, button);
      list.append(item);
    }
    return source.inspectionIds();
  }

  function replay(inspectionId) {
    view?.stop();
    document.getElementById('replay-section').hidden = false;
    const container = document.getElementById('replay');
    container.dataset.inspectionId = inspectionId;
    view = new E.ReplayView(container, { source, caseId: source.caseId, inspectionId, t });
    view.run();
  }

  function useCase(caseId) {
    source.use(caseId);
    const ids = listInspections();
    if (ids.length) replay(ids[0]);
  }

  document.getElementById('folder').addEventListener('change', (event) => {
    fail('');
    source = new E.FolderSource(event.target.files);
    const caseIds = source.caseIds();
    if (!caseIds.length) {
      fail(t('offline.no_case'));
      return;
    }
    const select = document.getElementById('case-select');
    select.replaceChildren(
      ...caseIds.map((id) => {
        const option = document.createElement('option');
        option.value = id;
        option.textContent = id;
        return option;
      }),
    );
    select.onchange = () => useCase(select.value);
    document.getElementById('package').hidden = false;
    useCase(caseIds[0]);
  });

  document.getElementById('lang-toggle').addEventListener('click', () => {
    lang = lang === 'en' ? 'zh-CN' : 'en';
    translate();
  });

  translate();
})();
