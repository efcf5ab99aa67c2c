"""Commerce events flattened into ``track`` bodies. Pure.

The Events API nests a commerce event's data (``product_action``, ``promotion_action``,
``product_impressions``); Firehose puts the same fields on the event itself. Both end
up as flat properties: totals and ids as scalars or lists of scalars that any event
store can keep, plus the full ``products`` list for destinations that take objects.
"""

from __future__ import annotations

from typing import Any

from . import const
from .common import Invalid, as_text, drop_empty, is_number, number, scalar


def commerce_parts(
    data: dict[str, Any], custom: dict[str, Any], limits: bool
) -> list[tuple[str, dict[str, Any]]]:
    """A commerce event as one or more flat ``track`` bodies:
    ``eCommerce - <action>`` for product actions, ``eCommerce - promotion_<action>``
    for promotions and ``eCommerce - impression`` for impressions."""
    currency = as_text(data.get("currency_code"))
    parts: list[tuple[str, dict[str, Any]]] = []
    product_action = data.get("product_action")
    if product_action is not None:
        parts.append(product_action_part(product_action, currency, custom))
    promotion = data.get("promotion_action")
    if promotion is not None:
        if not isinstance(promotion, dict):
            raise Invalid('"promotion_action" must be an object')
        parts.append(promotion_part(promotion.get("action"), promotion.get("promotions"), custom))
    impressions = data.get("product_impressions")
    if impressions is not None:
        parts.append(impression_part(impressions, "product_impression_list", custom))
    if not parts:
        raise Invalid(
            'A commerce_event needs "product_action", "promotion_action" or "product_impressions".'
        )
    return parts


def product_action_part(
    action_data: Any, currency: str | None, custom: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Shared by the Events API (``product_action`` object) and Firehose (fields on the
    event itself)."""
    if not isinstance(action_data, dict):
        raise Invalid('"product_action" must be an object')
    action = action_data.get("action")
    if not isinstance(action, str) or not action:
        raise Invalid('Required product_action field "action" is missing or empty.')
    if action not in const.PRODUCT_ACTIONS:
        raise Invalid(f'product_action "action" {action!r:.40} is not one of mParticle\'s actions.')
    products = _products(action_data.get("products"))
    props: dict[str, Any] = {
        "action": action,
        "transaction_id": as_text(action_data.get("transaction_id")),
        "revenue": number(action_data.get("total_amount"), "total_amount"),
        "currency": currency or as_text(action_data.get("currency_code")),
        "tax_amount": number(action_data.get("tax_amount"), "tax_amount"),
        "shipping_amount": number(action_data.get("shipping_amount"), "shipping_amount"),
        "coupon_code": as_text(action_data.get("coupon_code")),
        "affiliation": as_text(action_data.get("affiliation")),
        "checkout_step": action_data.get("checkout_step"),
        "checkout_options": as_text(action_data.get("checkout_options")),
        "product_list": as_text(action_data.get("product_action_list")),
        **_product_summary(products),
    }
    return f"eCommerce - {action}", {**drop_empty(props), **custom}


def promotion_part(
    action: Any, promotions: Any, custom: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    if not isinstance(action, str) or not action:
        raise Invalid('Required promotion_action field "action" is missing or empty.')
    if promotions is None:
        promotions = []
    if not isinstance(promotions, list) or not all(isinstance(p, dict) for p in promotions):
        raise Invalid('"promotions" must be an array of objects')
    items = [
        drop_empty({k: scalar(p.get(k)) for k in ("id", "name", "creative", "position", "slot")})
        for p in promotions
    ]
    props = {
        "action": action,
        "promotion_ids": [str(p["id"]) for p in items if "id" in p],
        "promotion_names": [str(p["name"]) for p in items if "name" in p],
        "promotions": items,
    }
    return f"eCommerce - promotion_{action}", {**drop_empty(props), **custom}


def impression_part(
    impressions: Any, list_field: str, custom: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    if not isinstance(impressions, list) or not all(isinstance(i, dict) for i in impressions):
        raise Invalid("impressions must be an array of objects")
    lists, products = [], []
    for impression in impressions:
        name = as_text(impression.get(list_field))
        if name:
            lists.append(name)
        for product in _products(impression.get("products")):
            products.append({**product, "impression_list": name} if name else product)
    props = {"impression_lists": lists, **_product_summary(products)}
    return "eCommerce - impression", {**drop_empty(props), **custom}


_PRODUCT_FIELDS = (
    "id",
    "name",
    "brand",
    "category",
    "variant",
    "position",
    "price",
    "quantity",
    "coupon_code",
)


def _products(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise Invalid('"products" must be an array of objects')
    out = []
    for product in value:
        item = {k: scalar(product.get(k)) for k in _PRODUCT_FIELDS}
        total = product.get("total_product_amount", product.get("total_amount"))
        item["total_amount"] = scalar(total)
        attrs = product.get("custom_attributes", product.get("attributes"))
        if isinstance(attrs, dict):
            item["attributes"] = {k: scalar(v) for k, v in attrs.items()}
        out.append(drop_empty(item))
    return out


def _product_summary(products: list[dict[str, Any]]) -> dict[str, Any]:
    """Scalars and lists of scalars a flat event store can keep, plus the products."""
    if not products:
        return {}
    quantities = [p["quantity"] for p in products if is_number(p.get("quantity"))]
    return {
        "product_count": len(products),
        "product_quantity": sum(quantities) if quantities else None,
        "product_ids": [str(p["id"]) for p in products if "id" in p],
        "product_names": [str(p["name"]) for p in products if "name" in p],
        "products": products,
    }
