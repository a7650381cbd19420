"""Line drawings of the breakout exercises for the handout: hand-written inline SVG, nothing fetched.

Each drawing is seen from above, head toward the top of the page, so the patient's right is on the
right of the picture. The working leg is drawn in the accent colour; for the left hip the picture
is mirrored (labels stay readable). Both hips, or a side not known, show the right hip with a
caption saying so. Every drawing carries its alt text (``role="img"`` with a ``<title>``).

The geometry follows the source: in the band exercise the band runs from the ankle to a post on
the *outside* of the working leg, so it pulls the foot outward; with the knee bent on the floor,
the foot travelling outward (away from the body's midline) is the hip turning inward (internal
rotation). In the 90/90 position the working hip is the back leg's: thigh out to the side, foot
behind; the chest turns back toward that ankle.

Examples
--------
>>> d = exercise_drawing("quadruped-band-ir", "left")
>>> d.svg.startswith("<svg") and "left ankle" in d.alt and "url(" not in d.svg
True
>>> exercise_drawing("hip-movement-sequence", "left") is None
True
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

__all__ = ["Drawing", "exercise_drawing", "DRAWN_EXERCISES"]

_W, _H = 320, 252
_INK, _ACCENT, _BAND, _MOVE, _MUTED = "#1b1b1b", "#0b5394", "#b45f06", "#b3261e", "#777777"


@dataclass(frozen=True)
class Drawing:
    """An exercise drawing: inline SVG markup, its alt text and a caption (may be empty)."""

    svg: str
    alt: str
    caption: str


class _Canvas:
    """SVG primitives in a 320 x 252 box, mirrored left-right when ``mirror`` (text stays readable)."""

    def __init__(self, mirror: bool):
        self.mirror = mirror
        self.parts: list[str] = []

    def _x(self, x: float) -> float:
        return _W - x if self.mirror else x

    def _pts(self, points) -> str:
        return " ".join(f"{self._x(x):.1f},{y:.1f}" for x, y in points)

    def line(self, points, *, color=_INK, width=3.0, dash: str | None = None) -> None:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{self._pts(points)}" fill="none" stroke="{color}" '
                          f'stroke-width="{width}" stroke-linecap="round" stroke-linejoin="round"{dashes}/>')

    def dot(self, x, y, r=4.0, *, color=_INK, fill=None) -> None:
        self.parts.append(f'<circle cx="{self._x(x):.1f}" cy="{y:.1f}" r="{r}" fill="{fill or color}" '
                          f'stroke="{color}" stroke-width="2"/>')

    def box(self, x, y, w, h, *, color=_INK) -> None:
        left = self._x(x + w) if self.mirror else x
        self.parts.append(f'<rect x="{left:.1f}" y="{y:.1f}" width="{w}" height="{h}" fill="{color}"/>')

    def arrow(self, start, control, end, *, color=_MOVE, width=2.2, both=False) -> None:
        """A quadratic curve from ``start`` to ``end`` with an arrowhead at the end (and the start)."""
        (x0, y0), (cx, cy), (x1, y1) = start, control, end
        self.parts.append(f'<path d="M{self._x(x0):.1f} {y0:.1f} Q{self._x(cx):.1f} {cy:.1f} {self._x(x1):.1f} '
                          f'{y1:.1f}" fill="none" stroke="{color}" stroke-width="{width}"/>')
        self._head(end, control, color)
        if both:
            self._head(start, control, color)

    def _head(self, tip, toward, color, size=8.0) -> None:
        (tx, ty), (fx, fy) = tip, toward
        angle = math.atan2(ty - fy, tx - fx)
        wings = [(tx - size * math.cos(angle + s), ty - size * math.sin(angle + s)) for s in (0.45, -0.45)]
        self.parts.append(f'<polygon points="{self._pts([tip, *wings])}" fill="{color}"/>')

    def text(self, x, y, words: str, *, anchor="start", size=9.5, color=_INK, bold=False) -> None:
        if self.mirror and anchor != "middle":
            anchor = "end" if anchor == "start" else "start"
        weight = ' font-weight="bold"' if bold else ""
        self.parts.append(f'<text x="{self._x(x):.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'fill="{color}" font-family="sans-serif"{weight}>{html.escape(words)}</text>')

    def svg(self, alt: str, key: str) -> str:
        title = f"drawing-{key}"
        return (f'<svg class="drawing" viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="{title}">'
                f'<title id="{title}">{html.escape(alt)}</title>{"".join(self.parts)}</svg>')


def _quadruped(c: _Canvas, side: str) -> str:
    c.text(8, 14, "Seen from above", size=9, color=_MUTED)
    c.dot(120, 30, 11, fill="#ffffff")  # head
    c.line([(98, 50), (142, 50)])  # shoulders, hands on the floor below them
    c.dot(98, 50, 4)
    c.dot(142, 50, 4)
    c.line([(120, 41), (120, 122)])  # back
    c.line([(104, 122), (136, 122)])  # hips, knees on the floor below them
    c.line([(104, 126), (104, 194)])  # the other shin, still
    c.dot(104, 126, 4)
    c.dot(104, 196, 3.5)
    c.line([(136, 126), (136, 194)], color=_MUTED, width=2, dash="4 3")  # start position
    c.text(132, 206, "start", anchor="end", size=9, color=_MUTED)
    c.line([(136, 126), (178, 182)], color=_ACCENT, width=4)  # working shin, foot turned out
    c.dot(136, 126, 4.5, color=_ACCENT)
    c.dot(178, 182, 4.5, color=_ACCENT)
    c.text(146, 118, f"{side} knee stays on the floor", size=10, color=_ACCENT, bold=True)
    zig = [(182, 182)] + [(188 + 8 * i, 177 if i % 2 == 0 else 187) for i in range(10)] + [(272, 182)]
    c.line(zig, color=_BAND, width=2)  # the band, ankle to post
    c.box(272, 164, 12, 36, color="#555555")
    c.text(278, 157, "post", anchor="middle", size=10, bold=True)
    c.text(222, 171, "band pulls ankle out", anchor="middle", size=9, color=_BAND)
    c.arrow((140, 200), (162, 208), (174, 194))
    c.text(160, 219, "foot out", anchor="middle", size=10, color=_MOVE, bold=True)
    c.text(8, 232, "Foot goes OUT, away from your other leg:", size=10, bold=True, color=_MOVE)
    c.text(8, 245, "that turns your hip IN.", size=10, bold=True, color=_MOVE)
    c.text(312, 245, "post: outside the working leg", anchor="end", size=9)
    return (f"Line drawing seen from above: on hands and knees, a band loops around the {side} ankle and runs to "
            f"a post on the outside of the {side} leg. The {side} knee stays on the floor while the foot swings "
            f"outward, away from the other leg, which turns the {side} hip inward; then the foot is pulled back in "
            "against the band.")


def _ninety_ninety(c: _Canvas, side: str, *, press: bool) -> str:
    other = "left" if side == "right" else "right"
    c.text(8, 14, "Seen from above", size=9, color=_MUTED)
    c.line([(106, 150), (106, 70)])  # front thigh, straight ahead
    c.line([(106, 70), (176, 70)])  # front shin, across in front
    c.dot(106, 70, 4)
    c.dot(178, 70, 3.5)
    c.line([(106, 80), (116, 80), (116, 70)], width=1.2)  # right angle at the front knee
    c.text(98, 100, f"{other} thigh", anchor="end", size=10)
    c.text(98, 112, "points straight", anchor="end", size=10)
    c.text(98, 124, "ahead", anchor="end", size=10)
    c.line([(134, 150), (214, 150)], color=_ACCENT, width=4)  # back thigh, out to the side
    c.line([(214, 150), (214, 214)], color=_ACCENT, width=4)  # back shin, foot behind
    c.line([(204, 150), (204, 160), (214, 160)], color=_ACCENT, width=1.2)  # right angle at the back knee
    c.dot(214, 150, 4.5, color=_ACCENT)
    c.dot(214, 216, 4.5, color=_ACCENT)
    c.text(222, 168, f"{side} leg:", size=10, color=_ACCENT, bold=True)
    c.text(222, 180, "the back leg,", size=10, color=_ACCENT)
    c.text(222, 192, "the hip you", size=10, color=_ACCENT)
    c.text(222, 204, "stretch", size=10, color=_ACCENT)
    c.line([(128, 156), (206, 208)], color=_MOVE, width=1.2, dash="3 3")
    c.parts.append(f'<ellipse cx="{c._x(120):.1f}" cy="150" rx="32" ry="11" fill="#ffffff" stroke="{_INK}" '
                   'stroke-width="2.5"/>')  # shoulders, over the seat
    c.dot(120, 148, 11, fill="#ffffff")  # head, nose forward
    c.line([(114, 137), (120, 129), (126, 137)], width=2)
    c.arrow((128, 126), (160, 124), (160, 146))  # the chest turns back toward the back ankle
    c.text(160, 98, "turn your chest", size=10, color=_MOVE, bold=True)
    c.text(160, 110, f"toward your {side} ankle", size=10, color=_MOVE, bold=True)
    if press:
        c.arrow((236, 214), (236, 222), (236, 236), width=3)
        c.text(244, 226, "press foot", size=10, color=_MOVE, bold=True)
        c.text(244, 238, "into floor", size=10, color=_MOVE, bold=True)
        c.text(8, 232, "Press the back foot down 10 s, then relax", size=10)
        c.text(8, 245, "and turn a little further for 10 s.", size=10)
        action = (f" From the stretch the {side} foot presses down into the floor, then relaxes while the body turns "
                  "further.")
    else:
        c.text(8, 232, "Right angles at both knees and between the thighs.", size=10)
        c.text(8, 245, "Hold where you feel the stretch in that hip.", size=10)
        action = ""
    return (f"Line drawing seen from above of the 90/90 sitting position: the {other} thigh points straight ahead "
            f"with its shin across in front; the {side} thigh points out to the {side} side with the {side} foot "
            f"behind. Both knees are bent to right angles. The chest turns back toward the {side} ankle.{action}")


_DRAWERS = {
    "quadruped-band-ir": _quadruped,
    "ninety-ninety-ir-stretch": lambda c, side: _ninety_ninety(c, side, press=False),
    "ninety-ninety-ir-pails": lambda c, side: _ninety_ninety(c, side, press=True),
}
DRAWN_EXERCISES = tuple(_DRAWERS)
"""Exercise ids (of the shipped protocol) that have a drawing."""


def exercise_drawing(exercise_id: str, side: str | None) -> Drawing | None:
    """The line drawing of an exercise for the hip(s) ``side``, or None if it has none.

    Parameters
    ----------
    exercise_id : str
        One of :data:`DRAWN_EXERCISES`; any other exercise (the Hip Movement Sequence, whose
        contents the clinic sets, or a clinic's own exercise) has no drawing.
    side : {"left", "right", "both"} or None
        ``left`` mirrors the drawing; ``both`` and None show the right hip and say so.

    Returns
    -------
    Drawing or None

    Examples
    --------
    >>> exercise_drawing("ninety-ninety-ir-pails", "both").caption
    'Right hip shown; for the left hip, the mirror image.'
    """
    draw = _DRAWERS.get(exercise_id)
    if draw is None:
        return None
    shown = "left" if side == "left" else "right"
    canvas = _Canvas(mirror=shown == "left")
    alt = draw(canvas, shown)
    caption = "" if side in ("left", "right") else "Right hip shown; for the left hip, the mirror image."
    return Drawing(svg=canvas.svg(alt, exercise_id), alt=alt, caption=caption)
