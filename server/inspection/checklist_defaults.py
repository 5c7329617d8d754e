# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The checklist templates a new server starts with; admins edit them (PUT) as data afterwards."""

from __future__ import annotations

from typing import Any

DEFAULT_TEMPLATE_ID = "default"

DEFAULT_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "template_id": "default",
        "case_type": "",
        "name": "通用现场踏勘",
        "items": [
            {
                "item_id": "site_identity",
                "text": "现场门牌或标识与申请地址一致",
                "required_photos": 1,
            },
            {"item_id": "site_overview", "text": "现场全景", "required_photos": 1},
            {"item_id": "key_points", "text": "重点部位核查", "required_photos": 1},
            {
                "item_id": "applicant_present",
                "text": "申请人本人在场并确认身份",
                "required_photos": 0,
            },
        ],
    },
    {
        "template_id": "building",
        "case_type": "建设工程",
        "name": "建设工程现场踏勘",
        "items": [
            {
                "item_id": "site_sign",
                "text": "施工现场公示牌（项目名称、许可证号）清晰可见",
                "required_photos": 1,
            },
            {"item_id": "boundary", "text": "场地四至边界与审批红线一致", "required_photos": 1},
            {
                "item_id": "structure",
                "text": "主体结构与施工图一致，无违规加建",
                "required_photos": 2,
            },
            {
                "item_id": "fire_access",
                "text": "消防通道畅通，灭火器材配置到位",
                "required_photos": 1,
            },
            {"item_id": "safety", "text": "围挡、安全网等安全防护措施到位", "required_photos": 1},
        ],
    },
    {
        "template_id": "food",
        "case_type": "食品经营",
        "name": "食品经营许可现场核查",
        "items": [
            {
                "item_id": "licence_display",
                "text": "营业执照、健康证明在醒目位置公示",
                "required_photos": 1,
            },
            {
                "item_id": "processing_area",
                "text": "加工区布局合理，生熟分开",
                "required_photos": 2,
            },
            {
                "item_id": "storage",
                "text": "原料离地离墙贮存，冷藏冷冻设施运行正常",
                "required_photos": 1,
            },
            {"item_id": "hygiene", "text": "清洗消毒及防蝇防鼠设施齐全", "required_photos": 1},
            {"item_id": "waste", "text": "餐厨垃圾分类收集，容器加盖", "required_photos": 0},
        ],
    },
    {
        "template_id": "environment",
        "case_type": "环境评估",
        "name": "环境影响评价现场核查",
        "items": [
            {"item_id": "outlet", "text": "排污口位置与标识规范", "required_photos": 1},
            {"item_id": "treatment", "text": "污染防治设施正常运行", "required_photos": 2},
            {
                "item_id": "monitoring",
                "text": "在线监测设备运行，数据记录完整",
                "required_photos": 1,
            },
            {
                "item_id": "surroundings",
                "text": "周边敏感目标（居民区、水体）情况",
                "required_photos": 1,
            },
        ],
    },
)
