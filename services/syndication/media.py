"""RESO Data Dictionary 2.0 Media vocabulary, declared once: the enumerations the API checks and
the OpenAPI document lists, and the media fields an image carries (docs/syndication.md maps them).

An image's own words are RESO's: `category` is MediaCategory, `image_of` ImageOf, `caption`
ShortDescription (50), `description` LongDescription (1024), `permission` Permission (public
unless set) and `alteration` MediaAlteration (a set; empty means None). `original_of` names the
unaltered image an altered one was made from."""

from __future__ import annotations

from collections.abc import Iterable

# MediaCategory (DD 2.0 lookup).
CATEGORIES: tuple[str, ...] = (
    "Photo",
    "FloorPlan",
    "Document",
    "Video",
    "BrandedVirtualTour",
    "UnbrandedVirtualTour",
    "AgentPhoto",
    "OfficePhoto",
    "OfficeLogo",
    "AerialView",
    "Map",
    "Survey",
    "Topography",
    "Disclosure",
    "Addendum",
    "Restriction",
    "RentalDocuments",
    "Other",
)

# ImageOf (DD 2.0 lookup, with the Master* names older feeds still send beside Primary*).
IMAGE_OF: tuple[str, ...] = (
    "AerialView", "Atrium", "Attic", "BackOfStructure", "Balcony", "Bar", "Barn", "Basement",
    "BasketballCourt", "Bathroom", "Bedroom", "BonusRoom", "BreakfastArea", "Closet", "CommonAmenity",
    "Community", "Courtyard", "Deck", "Den", "DiningArea", "DiningRoom", "Dock", "EntranceFoyer", "Entry",
    "ExerciseRoom", "FamilyRoom", "Fence", "Fireplace", "FloorPlan", "FrontOfStructure", "FrontPorch",
    "GameRoom", "Garage", "Garden", "GolfCourse", "GreatRoom", "GuestQuarters", "Gym", "Hallway",
    "HobbyRoom", "Inlaw", "Kitchen", "Lake", "Laundry", "Library", "LivingRoom", "LoadingDock", "Lobby",
    "Loft", "Lot", "Map", "MasterBathroom", "MasterBedroom", "MediaRoom", "MudRoom", "Nursery", "Office",
    "Other", "OutBuildings", "Pantry", "Parking", "Patio", "Pier", "PlatMap", "Playground", "Pond", "Pool",
    "Porch", "PrimaryBathroom", "PrimaryBedroom", "Reception", "RecreationRoom", "Sauna", "ScreenedPorch",
    "Showroom", "SideOfStructure", "SittingRoom", "Spa", "Stable", "Stairs", "Storage", "Studio", "Study",
    "SunRoom", "TennisCourt", "UtilityRoom", "View", "WalkInClosets", "Waterfront", "WineCellar",
    "Workshop", "Yard",
)  # fmt: skip

# What shows the property from outside: a primary photo must be one of these (compliance.py).
EXTERIOR_IMAGE_OF: frozenset[str] = frozenset(
    {
        "AerialView", "BackOfStructure", "Courtyard", "Deck", "FrontOfStructure", "FrontPorch", "Garden",
        "Lot", "Patio", "Pool", "Porch", "SideOfStructure", "View", "Waterfront", "Yard",
    }
)  # fmt: skip

# Permission (DD 2.0 lookup). Only Public media is in the public view and the feed.
PUBLIC = "Public"
PERMISSIONS: tuple[str, ...] = (PUBLIC, "Private", "Idx", "Vow", "AgentOnly", "OfficeOnly", "FirmOnly")

# MediaAlteration (DD 2.0 lookup). "None" is the empty set, never stored.
NO_ALTERATION = "None"
ALTERATIONS: tuple[str, ...] = (
    "VirtualStagingItemAddition",
    "DeclutteredItemRemoved",
    "VirtualRenovation",
    "TwilightConversion",
    "VirtualEnhancements",
    "VirtualRepresentationToBeBuilt",
    "VirtualRepresentationUnderConstruction",
    "ModelHome",
    "OtherMediaModification",
    NO_ALTERATION,
)

MEDIA_STATUSES: tuple[str, ...] = ("Active", "Deleted", "Other")

MAX_CAPTION = 50  # ShortDescription
MAX_DESCRIPTION = 1024  # LongDescription

# The media fields an image carries, as the API names them (PATCH, upload, import).
FIELDS = ("category", "image_of", "caption", "description", "permission", "alteration", "original_of")


def alteration_set(values: Iterable[str] | None) -> list[str]:
    """A set of alterations in declared order; "None" (and nothing) is the empty set."""
    chosen = set(values or ()) - {NO_ALTERATION}
    return [a for a in ALTERATIONS if a in chosen]


def stored_alteration(values: Iterable[str] | None) -> str | None:
    """The column's form: comma-separated, None for no alteration."""
    return ",".join(alteration_set(values)) or None


def read_alteration(column: str | None) -> list[str]:
    return [a for a in (column or "").split(",") if a]


def is_public(permission: str | None) -> bool:
    return (permission or PUBLIC) == PUBLIC
