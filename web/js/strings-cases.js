// Strings of the case form on /cases: field limits and messages, the site's coordinate system.

import { addStrings } from './i18n.js';

addStrings({
  'zh-CN': {
    'cases.field_required': '请填写{field}',
    'cases.field_too_long': '{field}最多 {limit} 个字符，现有 {count} 个，请删减',
    'cases.field_invisible': '{field}不能包含控制字符或不可见字符（如换行、零宽空格）',
    'cases.field_count': '{count}/{limit}',
    'cases.fix_fields': '请修改标出的内容：{messages}',
    'cases.site_system': '坐标来源',
    'cases.site_system_hint': '从高德、腾讯或百度地图复制的坐标会换算为手机定位所用的 WGS-84',
    'cases.inspectors': '踏勘人员',
    'cases.inspectors_hint': '现场核查应由两名以上工作人员进行（《行政许可法》第三十四条）；所选人员均可发起和参加本案踏勘',
    'cases.inspectors_one': '只选了 {n} 名踏勘人员：现场核查应由两名以上工作人员进行',
    'cases.inspectors_none': '请至少选择一名踏勘人员',
    'cases.inspector_self': '{name}（本人）',
    'cases.site_system.wgs84': 'WGS-84（GPS、手机定位、奥维、谷歌地球）',
    'cases.site_system.gcj02': 'GCJ-02（高德地图、腾讯地图）',
    'cases.site_system.bd09': 'BD-09（百度地图）',
  },
  en: {
    'cases.field_required': 'Please fill in {field}',
    'cases.field_too_long': '{field}: at most {limit} characters, this has {count}; please shorten it',
    'cases.field_invisible': '{field} must not contain control or invisible characters (line breaks, zero-width spaces)',
    'cases.field_count': '{count}/{limit}',
    'cases.fix_fields': 'Please correct the marked fields: {messages}',
    'cases.site_system': 'Coordinates from',
    'cases.site_system_hint': 'Coordinates copied from Amap, Tencent or Baidu Maps are converted to the WGS-84 that phones report',
    'cases.inspectors': 'Inspectors',
    'cases.inspectors_hint': 'On-site checks are made by two or more staff (Administrative Licensing Law, art. 34); each inspector chosen can start and join this case\'s inspections',
    'cases.inspectors_one': 'Only {n} inspector chosen: on-site checks are made by two or more staff',
    'cases.inspectors_none': 'Choose at least one inspector',
    'cases.inspector_self': '{name} (you)',
    'cases.site_system.wgs84': 'WGS-84 (GPS, phone location, Google Earth)',
    'cases.site_system.gcj02': 'GCJ-02 (Amap, Tencent Maps)',
    'cases.site_system.bd09': 'BD-09 (Baidu Maps)',
  },
});
