"""A small inventory module: the README's main job completes, documents and refactors it."""

from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: float
    quantity: int


def total_value(items):
    total = 0.0
    for item in items:
        total += item.price * item.quantity
    return total


def restock_list(items, minimum):
    result = []
    for item in items:
        if item.quantity < minimum:
            result.append(item.name)
    return result


def cheapest(items):
    if not items:
        return None
    return min(items, key=lambda item: item.price)


def describe(item):
    return f"{item.name}: {item.quantity} at {item.price:.2f}"
