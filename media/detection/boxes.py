"""Box: an axis-aligned rectangle in pixels of one image, as every detector returns it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Box:
    """``x``, ``y`` (top-left corner), ``width`` and ``height`` in pixels of one image.

    The same shape as the OmniSight ``boundingBox``. Which image the pixels belong to is
    the caller's to track: :meth:`scaled` maps a box from one image size to another.
    """

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise ValueError(f"negative box size {self.width}x{self.height}")

    @property
    def area(self) -> int:
        """Width times height, in square pixels."""
        return self.width * self.height

    @property
    def right(self) -> int:
        """x of the first column right of the box."""
        return self.x + self.width

    @property
    def bottom(self) -> int:
        """y of the first row below the box."""
        return self.y + self.height

    @property
    def centre(self) -> tuple[float, float]:
        """Centre point (x, y)."""
        return (self.x + self.width / 2, self.y + self.height / 2)

    @property
    def bottom_centre(self) -> tuple[float, float]:
        """Middle of the bottom edge: where a standing person or a car touches the ground."""
        return (self.x + self.width / 2, float(self.bottom))

    def scaled(self, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
        """This box, measured on an image of ``from_size`` (w, h), in pixels of ``to_size``."""
        sx = to_size[0] / from_size[0]
        sy = to_size[1] / from_size[1]
        x0, y0 = round(self.x * sx), round(self.y * sy)
        x1, y1 = round(self.right * sx), round(self.bottom * sy)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def clipped(self, width: int, height: int) -> Box:
        """This box cut to an image of ``width`` x ``height`` (empty if fully outside)."""
        x0, y0 = min(max(self.x, 0), width), min(max(self.y, 0), height)
        x1, y1 = min(max(self.right, 0), width), min(max(self.bottom, 0), height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    def iou(self, other: Box) -> float:
        """Intersection over union, 0 for disjoint or empty boxes."""
        ix = max(0, min(self.right, other.right) - max(self.x, other.x))
        iy = max(0, min(self.bottom, other.bottom) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def normalized(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(x, y, width, height) as fractions of an image of ``width`` x ``height``."""
        return (self.x / width, self.y / height, self.width / width, self.height / height)
