"""The controlled vocabularies of the ledger: slugs and their Chinese names.

Every slug is accepted with `_` or `-`, and so is its Chinese name (DESIGN §1).
The slugs are part of the stored format: never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vocabulary:
    """One closed list of slugs, each with its Chinese and English label."""

    field: str
    labels: dict[str, tuple[str, str]]  # slug -> (zh, en)

    def parse(self, value: str) -> str:
        """The slug for `value`: a slug with `_` or `-`, its Chinese name, or its English label."""
        key = value.strip()
        slug = key.lower().replace("-", "_").replace(" ", "_")
        if slug in self.labels:
            return slug
        for candidate, (zh, en) in self.labels.items():
            if key == zh or key.lower() == en.lower():
                return candidate
        raise ValueError(f"unknown {self.field} {value!r} (one of: {', '.join(self.labels)})")

    def label(self, slug: str, lang: str = "en") -> str:
        zh, en = self.labels[slug]
        return zh if lang == "zh" else en

    def __contains__(self, slug: object) -> bool:
        return slug in self.labels


KINDS = Vocabulary(
    "kind",
    {
        "production_development": ("生产发展", "production development"),
        "life_care": ("生活照料", "life care"),
        "emergency_aid": ("应急救助", "emergency aid"),
        "counseling": ("心理抚慰", "counseling"),
        "family_care": ("亲情关怀", "family care"),
        "rights_protection": ("权益维护", "rights protection"),
    },
)

CATEGORIES = Vocabulary(
    "category",
    {
        "left_behind_elderly": ("留守老人", "left-behind elderly"),
        "left_behind_child": ("留守儿童", "left-behind child"),
        "left_behind_woman": ("留守妇女", "left-behind woman"),
        "five_guarantee": ("五保户", "five-guarantee household"),
        "hardship": ("困难对象", "hardship case"),
        "disabled": ("残疾人", "disabled"),
        "elderly_living_alone": ("独居老人", "elderly living alone"),
        "dibao": ("低保户", "minimum-living-allowance household"),
        "extreme_poverty": ("特困人员", "person in extreme poverty"),
        "monitored": ("防返贫监测对象", "monitored against relapse into poverty"),
    },
)

ROLES = Vocabulary(
    "role",
    {
        "party_member": ("党员", "party member"),
        "cadre": ("干部", "cadre"),
        "volunteer": ("志愿者", "volunteer"),
        "grid_worker": ("网格员", "grid worker"),
        "social_worker": ("社工", "social worker"),
        "community_staff": ("社区专干", "community staff"),
    },
)

PLACES = Vocabulary(
    "place",
    {
        "happiness_home": ("幸福院", "happiness home"),
        "service_center": ("公共服务中心", "public service center"),
        "home_visit": ("入户", "home visit"),
        "other": ("其他", "other"),
    },
)

GENDERS = Vocabulary("gender", {"male": ("男", "male"), "female": ("女", "female")})

DEPARTURE_REASONS = Vocabulary(
    "reason",
    {
        "moved": ("迁出", "moved"),
        "deceased": ("死亡", "deceased"),
        "other": ("其他", "other"),
    },
)
