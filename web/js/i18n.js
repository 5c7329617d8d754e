// Strings of every page, zh-CN first. `?lang=en` or the toggle switches; the choice is kept in
// localStorage (it is not secret). Elements carry data-i18n="key" (text), data-i18n-placeholder,
// data-i18n-title or data-i18n-aria-label and are refreshed on every switch.

export const LANGS = ['zh-CN', 'en'];

const STRINGS = {
  'zh-CN': {
    'app.name': 'Takan 远程踏勘',
    'lang.toggle': 'English',
    'common.loading': '正在加载…',
    'common.copy': '复制',
    'common.copied': '已复制',
    'common.send': '发送',
    'common.cancel': '取消',
    'common.network_error': '网络错误，请检查网络后重试',
    'common.server_error': '服务器错误：{reason}',
    'common.rate_limited': '尝试次数过多，请 {seconds} 秒后再试',

    'login.title': '工作人员登录',
    'login.roles': '检查员、审计员与管理员均在此用各自的账号登录',
    'login.username': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.busy': '正在登录…',
    'login.invalid': '用户名或密码错误',
    'login.invalid_left': '用户名或密码错误，还可尝试 {left} 次',
    'login.invalid_left_one': '用户名或密码错误，还可尝试 1 次',
    'login.required': '请输入用户名和密码',

    'cases.title': '我的案件',
    'cases.logout': '退出登录',
    'cases.signed_in_as': '当前用户：{name}',
    'cases.empty': '暂无案件，请在下方创建。',
    'cases.create': '新建案件',
    'cases.case_id': '案件编号',
    'cases.case_id_hint': '按文书所写填写，如 榆阳食经〔2026〕0142号',
    'case.archive_id': '存证编号 {id}',
    'case.archive_id_hint': '存证库中案件的编号（由案件编号导出，用于核验与导出）',
    'site_system.wgs84': 'WGS-84',
    'site_system.gcj02': 'GCJ-02 高德/腾讯',
    'site_system.bd09': 'BD-09 百度',
    'cases.case_title': '案件名称',
    'cases.address': '踏勘地址',
    'cases.applicant_name': '申请人姓名',
    'cases.applicant_phone': '申请人电话',
    'cases.submit': '创建',
    'cases.case_type': '案件类型（决定检查清单）',
    'cases.case_type_none': '通用',
    'cases.site_lat': '现场纬度（可选）',
    'cases.site_lon': '现场经度（可选）',
    'cases.site_hint': '填写后，检查员可看到申请人与现场的距离',
    'cases.site_pair': '纬度和经度需同时填写，纬度 -90～90，经度 -180～180',
    'cases.schedule': '预约踏勘',
    'cases.schedule_at': '预约时间',
    'cases.schedule_submit': '创建预约',
    'cases.scheduled': '已预约：{time}，邀请链接已生成',
    'cases.created': '案件 {id} 已创建',
    'cases.created_as': '案件 {number} 已创建，存证编号 {id}',
    'cases.exists': '案件编号 {id} 已存在',
    'cases.start': '开始踏勘',
    'cases.starting': '正在创建…',
    'cases.resume': '进入进行中的踏勘',

    'inspect.title': '远程踏勘',
    'inspect.back': '返回案件列表',
    'inspect.invite': '邀请申请人',
    'inspect.invite_link': '邀请链接',
    'inspect.short_code': '短码（申请人打开 {url} 输入）',
    'inspect.expires': '有效期至 {time}',
    'inspect.waiting_video': '等待申请人开启摄像头…',
    'inspect.unmute': '点击开启声音',
    'inspect.mic_on': '麦克风已开启',
    'inspect.mic_denied': '未获得麦克风权限：仅接收音视频，申请人听不到您',
    'inspect.controls': '现场控制',
    'inspect.switch_camera': '切换前/后摄像头',
    'inspect.torch_on': '打开补光灯',
    'inspect.torch_off': '关闭补光灯',
    'inspect.zoom': '变焦',
    'inspect.quality': '连接质量',
    'inspect.quality_mine': '本端接收',
    'inspect.quality_peer': '申请人发送',
    'inspect.participants': '在线人员',
    'inspect.chat': '文字沟通',
    'inspect.chat_placeholder': '输入消息…',
    'inspect.end': '结束踏勘',
    'inspect.end_confirm': '确认结束本次踏勘？结束后邀请链接立即失效。',
    'inspect.end_yes': '确认结束',
    'inspect.ended': '本次踏勘已结束',
    'inspect.end_failed': '结束失败：{reason}',
    'inspect.not_found': '踏勘不存在或无权访问',
    'inspect.sent_request': '已发送：{what}',
    'inspect.result_ok': '{what}：成功',
    'inspect.result_fail': '{what}：设备不支持或失败（{reason}）',

    'role.applicant': '申请人',
    'role.inspector': '检查员',
    'presence.connected': '在线',
    'presence.disconnected': '离线',
    'presence.you': '（我）',
    'chat.me': '我',

    'action.switch_camera.user': '切换到前置摄像头',
    'action.switch_camera.environment': '切换到后置摄像头',
    'action.torch.true': '打开补光灯',
    'action.torch.false': '关闭补光灯',
    'action.torch': '补光灯',
    'action.zoom': '变焦至 {value}×',

    'conn.connecting': '正在连接…',
    'conn.joined': '已连接',
    'conn.reconnecting': '连接中断，正在重新连接…',
    'conn.media_connecting': '正在建立视频连接…',
    'conn.media_connected': '视频已连接',
    'conn.media_failed': '视频连接中断，正在恢复…',
    'conn.stopped': '已断开',
    'conn.replaced': '本次踏勘已在另一个窗口或设备上打开，此页面已暂停。',
    'conn.take_over': '在此页面继续',

    'stats.bitrate': '码率',
    'stats.fps': '帧率',
    'stats.resolution': '分辨率',
    'stats.rtt': '往返时延',
    'stats.none': '暂无数据',

    'join.title': '远程踏勘',
    'join.inspector': '检查员',
    'join.case': '案件',
    'join.address': '地址',
    'join.intro': '{name} 邀请您通过手机视频配合完成现场踏勘。',
    'join.recorded': '本次踏勘全程录像留痕：视频、声音和文字消息都会被完整记录并作为审查证据保存。',
    'join.camera_note': '点击“同意并开始”后，浏览器会请求使用摄像头和麦克风，请选择允许。',
    'join.accept': '同意并开始',
    'join.decline': '不同意',
    'join.declined': '您已拒绝。如需继续踏勘，请点击下方按钮。',
    'join.declined_back': '返回',
    'join.live': '正在直播，请按检查员指示拍摄现场',
    'join.recording_badge': '录像中',
    'join.enable_sound': '点击开启检查员的声音',
    'join.media_denied': '无法使用摄像头：{reason}。请在浏览器设置中允许摄像头和麦克风后重试。',
    'join.media_retry': '重新开启摄像头',
    'join.mic_denied': '未获得麦克风权限，检查员听不到您的声音',
    'join.ended': '本次踏勘已结束，感谢您的配合。',
    'join.invalid': '链接无效或已过期，请联系检查员重新获取。',
    'join.request': '检查员请求：{what}',
    'join.request_failed': '检查员请求的{what}在这部手机上无法使用（{reason}），您无需操作',
    'join.chat': '文字消息',
    'join.chat_placeholder': '输入消息…',
    'join.quality': '连接详情（供技术支持）',
    'join.reason.no_camera': '本设备没有该摄像头',
    'join.reason.torch': '本设备摄像头不支持补光灯',
    'join.reason.zoom': '本设备摄像头不支持变焦',

    'code.title': '输入踏勘码',
    'code.hint': '请输入检查员提供的 6 位数字（可带空格或短横线）',
    'code.submit': '进入',
    'code.busy': '正在验证…',
    'code.invalid_format': '踏勘码是 6 位数字，您输入了 {count} 位',
    'code.invalid_char': '踏勘码只含数字（可用空格或短横线分隔），不能含“{char}”',
    'code.too_long': '输入过长（最多 {max} 个字符）',
    'code.wrong': '踏勘码错误或已失效',
    'code.wrong_left': '踏勘码错误或已失效，还可尝试 {left} 次',
    'code.wrong_left_one': '踏勘码错误或已失效，还可尝试 1 次',
  },
  en: {
    'app.name': 'Takan remote inspection',
    'lang.toggle': '中文',
    'common.loading': 'Loading…',
    'common.copy': 'Copy',
    'common.copied': 'Copied',
    'common.send': 'Send',
    'common.cancel': 'Cancel',
    'common.network_error': 'Network error, check your connection and try again',
    'common.server_error': 'Server error: {reason}',
    'common.rate_limited': 'Too many attempts, try again in {seconds} s',

    'login.title': 'Staff sign-in',
    'login.roles': 'Inspectors, auditors and admins each sign in here with their own account',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.busy': 'Signing in…',
    'login.invalid': 'Wrong username or password',
    'login.invalid_left': 'Wrong username or password, {left} attempts left',
    'login.invalid_left_one': 'Wrong username or password, 1 attempt left',
    'login.required': 'Enter username and password',

    'cases.title': 'My cases',
    'cases.logout': 'Sign out',
    'cases.signed_in_as': 'Signed in as {name}',
    'cases.empty': 'No cases yet, create one below.',
    'cases.create': 'New case',
    'cases.case_id': 'Case number',
    'cases.case_id_hint': 'As written on the file, e.g. 榆阳食经〔2026〕0142号',
    'case.archive_id': 'archive ID {id}',
    'case.archive_id_hint': 'The case in the evidence archive (derived from its number; used to verify and export)',
    'site_system.wgs84': 'WGS-84',
    'site_system.gcj02': 'GCJ-02 Amap/Tencent',
    'site_system.bd09': 'BD-09 Baidu',
    'cases.case_title': 'Title',
    'cases.address': 'Site address',
    'cases.applicant_name': 'Applicant name',
    'cases.applicant_phone': 'Applicant phone',
    'cases.submit': 'Create',
    'cases.case_type': 'Case type (selects the checklist)',
    'cases.case_type_none': 'General',
    'cases.site_lat': 'Site latitude (optional)',
    'cases.site_lon': 'Site longitude (optional)',
    'cases.site_hint': 'With these, the inspector sees how far the applicant is from the site',
    'cases.site_pair': 'Give both latitude (-90 to 90) and longitude (-180 to 180), or neither',
    'cases.schedule': 'Schedule',
    'cases.schedule_at': 'Agreed time',
    'cases.schedule_submit': 'Schedule inspection',
    'cases.scheduled': 'Scheduled for {time}; the invite link is ready',
    'cases.created': 'Case {id} created',
    'cases.created_as': 'Case {number} created, archive ID {id}',
    'cases.exists': 'Case number {id} already exists',
    'cases.start': 'Start inspection',
    'cases.starting': 'Creating…',
    'cases.resume': 'Open live inspection',

    'inspect.title': 'Remote inspection',
    'inspect.back': 'Back to cases',
    'inspect.invite': 'Invite the applicant',
    'inspect.invite_link': 'Invite link',
    'inspect.short_code': 'Short code (applicant opens {url})',
    'inspect.expires': 'Valid until {time}',
    'inspect.waiting_video': 'Waiting for the applicant’s camera…',
    'inspect.unmute': 'Click to unmute',
    'inspect.mic_on': 'Microphone on',
    'inspect.mic_denied': 'No microphone permission: receiving only, the applicant cannot hear you',
    'inspect.controls': 'Camera control',
    'inspect.switch_camera': 'Switch front/rear camera',
    'inspect.torch_on': 'Torch on',
    'inspect.torch_off': 'Torch off',
    'inspect.zoom': 'Zoom',
    'inspect.quality': 'Connection quality',
    'inspect.quality_mine': 'Received here',
    'inspect.quality_peer': 'Sent by applicant',
    'inspect.participants': 'Participants',
    'inspect.chat': 'Chat',
    'inspect.chat_placeholder': 'Type a message…',
    'inspect.end': 'End inspection',
    'inspect.end_confirm': 'End this inspection? The invite stops working at once.',
    'inspect.end_yes': 'End now',
    'inspect.ended': 'This inspection has ended',
    'inspect.end_failed': 'Could not end: {reason}',
    'inspect.not_found': 'Inspection not found or not yours',
    'inspect.sent_request': 'Sent: {what}',
    'inspect.result_ok': '{what}: done',
    'inspect.result_fail': '{what}: not supported by the device or failed ({reason})',

    'role.applicant': 'Applicant',
    'role.inspector': 'Inspector',
    'presence.connected': 'online',
    'presence.disconnected': 'offline',
    'presence.you': ' (you)',
    'chat.me': 'Me',

    'action.switch_camera.user': 'Switch to the front camera',
    'action.switch_camera.environment': 'Switch to the rear camera',
    'action.torch.true': 'Torch on',
    'action.torch.false': 'Torch off',
    'action.torch': 'Torch',
    'action.zoom': 'Zoom to {value}×',

    'conn.connecting': 'Connecting…',
    'conn.joined': 'Connected',
    'conn.reconnecting': 'Connection lost, reconnecting…',
    'conn.media_connecting': 'Setting up video…',
    'conn.media_connected': 'Video connected',
    'conn.media_failed': 'Video interrupted, recovering…',
    'conn.stopped': 'Disconnected',
    'conn.replaced': 'This inspection was opened in another window or device; this page is paused.',
    'conn.take_over': 'Continue here',

    'stats.bitrate': 'Bitrate',
    'stats.fps': 'Frame rate',
    'stats.resolution': 'Resolution',
    'stats.rtt': 'Round trip',
    'stats.none': 'No data yet',

    'join.title': 'Remote inspection',
    'join.inspector': 'Inspector',
    'join.case': 'Case',
    'join.address': 'Address',
    'join.intro': '{name} invites you to show the site by live video from your phone.',
    'join.recorded': 'This inspection is recorded in full: video, sound and chat messages are kept as evidence.',
    'join.camera_note': 'After “Agree and start” the browser asks for camera and microphone access: please allow it.',
    'join.accept': 'Agree and start',
    'join.decline': 'Decline',
    'join.declined': 'You declined. To take part in the inspection, go back.',
    'join.declined_back': 'Back',
    'join.live': 'Live: please film the site as the inspector asks',
    'join.recording_badge': 'REC',
    'join.enable_sound': 'Tap to hear the inspector',
    'join.media_denied': 'Cannot use the camera: {reason}. Allow camera and microphone in the browser settings and retry.',
    'join.media_retry': 'Turn the camera on again',
    'join.mic_denied': 'No microphone permission: the inspector cannot hear you',
    'join.ended': 'The inspection has ended. Thank you.',
    'join.invalid': 'This link is invalid or has expired. Ask the inspector for a new one.',
    'join.request': 'Inspector asks: {what}',
    'join.request_failed': 'The {what} the inspector asked for is not available on this phone ({reason}); nothing for you to do',
    'join.chat': 'Messages',
    'join.chat_placeholder': 'Type a message…',
    'join.quality': 'Connection details (for support)',
    'join.reason.no_camera': 'this device has no such camera',
    'join.reason.torch': 'this camera has no torch',
    'join.reason.zoom': 'this camera cannot zoom',

    'code.title': 'Enter inspection code',
    'code.hint': 'Enter the 6 digits the inspector gave you (spaces or dashes are fine)',
    'code.submit': 'Continue',
    'code.busy': 'Checking…',
    'code.invalid_format': 'The code has 6 digits; you typed {count}',
    'code.invalid_char': 'The code is digits only (spaces or dashes between them are fine), not “{char}”',
    'code.too_long': 'Too long (at most {max} characters)',
    'code.wrong': 'Wrong or expired code',
    'code.wrong_left': 'Wrong or expired code, {left} attempts left',
    'code.wrong_left_one': 'Wrong or expired code, 1 attempt left',
  },
};

const STORAGE_KEY = 'takan.lang';
const listeners = [];
let current = pickInitialLang();

function pickInitialLang() {
  const fromUrl = new URLSearchParams(location.search).get('lang');
  if (LANGS.includes(fromUrl)) return fromUrl;
  if (fromUrl && fromUrl.toLowerCase().startsWith('en')) return 'en';
  if (fromUrl && fromUrl.toLowerCase().startsWith('zh')) return 'zh-CN';
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    // storage blocked (private mode): default below
  }
  return 'zh-CN';
}

export function lang() {
  return current;
}

export function t(key, params = {}) {
  const text = STRINGS[current][key] ?? STRINGS['zh-CN'][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

// A page's own strings, kept in its own file so that pages never edit each other's tables:
// addStrings({'zh-CN': {...}, en: {...}}) before the first translatePage().
export function addStrings(table) {
  for (const language of LANGS) Object.assign(STRINGS[language], table[language] ?? {});
}

export function has(key) {
  return key in STRINGS[current];
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // not persisted, fine
  }
  const url = new URL(location.href);
  if (url.searchParams.has('lang')) {
    url.searchParams.set('lang', next);
    history.replaceState(history.state, '', url);
  }
  translatePage();
  for (const listener of listeners) listener(next);
}

export function onLangChange(listener) {
  listeners.push(listener);
}

export function translatePage(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [attr, key] of [
    ['placeholder', 'i18nPlaceholder'],
    ['title', 'i18nTitle'],
    ['aria-label', 'i18nAriaLabel'],
  ]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.dataset[key]));
  }
}

// Wires a button (default #lang-toggle) that flips between the two languages.
export function setupLangToggle(button = document.getElementById('lang-toggle')) {
  translatePage();
  if (!button) return;
  button.addEventListener('click', () => setLang(current === 'en' ? 'zh-CN' : 'en'));
}
