// The offline page of an evidence package (index.html at the root of the export zip). The user
// picks the unzipped folder; every file is read in the browser: the package index (every file's
// size and SHA-256, signed) is checked as takan verify EXPORT.zip checks it, and the evidence
// core checks the chain, the manifest's signature and every segment's hash before it plays,
// exactly as the server's replay page does. A classic script: no modules, no network.

(function () {
  'use strict';

  const E = globalThis.TakanEvidence;
  const P = globalThis.TakanPackage;
  const LANGS = ['zh-CN', 'en'];
  let lang = pickLang();
  let source = null;
  let check = null;
  let view = null;
  let current = null; // the inspection being replayed
  let pinned = null; // a fingerprint, as takan verify --key
  let receipts = []; // [{name, bytes}], as takan verify --receipt

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
    current = inspectionId;
    view?.stop();
    document.getElementById('replay-section').hidden = false;
    const container = document.getElementById('replay');
    container.dataset.inspectionId = inspectionId;
    view = new E.ReplayView(container, {
      source,
      caseId: source.caseId,
      inspectionId,
      t,
      package: check,
      trustedKeys: pinned ? [pinned] : null,
      receipts,
    });
    view.run();
  }

  function useCase(caseId) {
    source.use(caseId);
    const ids = listInspections();
    if (ids.length) replay(ids[0]);
  }

  // The package's own verdict (its index: rules 1-6 and 8 of docs/archive.md, "Checking an
  // export"), beside the replay's, which follows takan verify's order over the case too.
  async function showPackage(current) {
    const box = document.getElementById('package-verdict');
    box.dataset.state = 'pending';
    delete box.dataset.where;
    box.className = 'muted';
    box.textContent = t('offline.package_pending');
    const verdict = (await current.first()) ?? (await current.last());
    if (current !== check) return;
    if (verdict) {
      box.dataset.state = 'failed';
      box.dataset.where = verdict.where;
      box.className = 'bad mono';
      box.textContent = `FAILED: ${verdict.where}: ${verdict.reason}`;
    } else {
      const { index } = await current.index();
      box.dataset.state = 'verified';
      box.className = 'ok';
      box.textContent = t('offline.package_ok', { n: index.members.length + 1, key: index.key_fingerprint });
    }
  }

  document.getElementById('folder').addEventListener('change', async (event) => {
    fail('');
    const files = event.target.files;
    check = new P.PackageCheck(files);
    source = new E.FolderSource(files);
    const current = check;
    document.getElementById('package').hidden = false;
    showPackage(current);
    const caseIds = source.caseIds();
    if (!caseIds.length) {
      fail(t('offline.no_case'));
      return;
    }
    const { index } = await current.index();
    if (current !== check) return;
    const first = index && caseIds.includes(index.case_id) ? index.case_id : caseIds[0];
    const select = document.getElementById('case-select');
    select.replaceChildren(
      ...caseIds.map((id) => {
        const option = document.createElement('option');
        option.value = id;
        option.textContent = id;
        return option;
      }),
    );
    select.value = first;
    select.onchange = () => useCase(select.value);
    useCase(first);
  });

  // A pinned key or a receipt changes what is checked: the replay is verified again.
  function again() {
    if (source && current) replay(current);
  }

  function fieldError(id, text) {
    const box = document.getElementById(id);
    box.textContent = text;
    box.hidden = !text;
  }

  document.getElementById('pin-key').addEventListener('change', (event) => {
    const text = event.target.value.trim();
    if (text && !/^sha256:[0-9a-f]{64}$/.test(text)) {
      fieldError('pin-error', t('offline.pin_invalid'));
      return;
    }
    fieldError('pin-error', '');
    pinned = text || null;
    again();
  });

  document.getElementById('receipts').addEventListener('change', async (event) => {
    // Until the files are read, no earlier verdict stands.
    view?.stop();
    delete document.getElementById('replay').dataset.verdict;
    // Read as takan verify reads one: at most 1 MiB + 1 byte (more is "too large for a receipt").
    const chosen = [];
    for (const file of event.target.files) {
      chosen.push({ name: file.name, bytes: new Uint8Array(await file.slice(0, 1024 * 1024 + 1).arrayBuffer()) });
    }
    receipts = chosen;
    again();
  });

  document.getElementById('lang-toggle').addEventListener('click', () => {
    lang = lang === 'en' ? 'zh-CN' : 'en';
    translate();
  });

  translate();
})();
