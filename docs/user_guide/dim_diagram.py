"""Deep InfoMax in one picture: what the critics compare (drawn at docs build time)."""

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch

REAL, FAKE, CODE, INK = "#2a9d8f", "#e76f51", "#264653", "#333333"


def box(ax, x, y, w, h, text, color, size=9, text_color="white"):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor="none",
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size, color=text_color)


def arrow(ax, start, end, color=INK, style="-|>", dashed=False):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": style,
            "color": color,
            "lw": 1.4,
            "linestyle": "--" if dashed else "-",
            "shrinkA": 2,
            "shrinkB": 2,
        },
    )


def crystal(ax, x, y, species, radius=0.09, spacing=0.24):
    """A 3x3 patch of a periodic crystal, with the centre site highlighted."""
    colors = {"A": "#8ab17d", "B": "#e9c46a", "C": "#9b5de5", "D": "#4cc9f0"}
    for i in range(3):
        for j in range(3):
            kind = species[(i + j) % len(species)]
            cx, cy = x + (i - 1) * spacing, y + (j - 1) * spacing
            ax.add_patch(Circle((cx, cy), radius, facecolor=colors[kind], edgecolor=INK, lw=0.6))
    ax.add_patch(Circle((x, y), radius + 0.035, fill=False, edgecolor=CODE, lw=2))


fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
for ax in (left, right):
    ax.set_xlim(0, 5)
    ax.set_ylim(0, 4.2)
    ax.set_aspect("equal")
    ax.axis("off")

# ------------------------------------------------------------------ local
ax = left
ax.set_title("Local objective: does a site's code know its surroundings?", fontsize=11)
crystal(ax, 0.6, 3.2, "AB")
ax.text(0.6, 2.65, "crystal (supercell)", ha="center", fontsize=8)
box(ax, 2.0, 3.2, 1.0, 0.5, "encoder", CODE)
box(ax, 3.4, 3.2, 0.9, 0.5, r"site code $\ell_i$", "#6d597a")
arrow(ax, (0.95, 3.2), (1.5, 3.2))
arrow(ax, (2.5, 3.2), (2.95, 3.2))

box(ax, 1.35, 1.8, 2.5, 0.55, "real neighbour $j$:\nits species and distance $d_{ij}$", REAL, 8)
box(
    ax,
    1.35,
    1.05,
    2.5,
    0.55,
    "fake neighbour: species and/or\ndistances from another crystal",
    FAKE,
    8,
)
box(ax, 3.9, 1.45, 1.0, 0.5, "local critic", CODE)
arrow(ax, (3.4, 2.95), (3.8, 1.7))
arrow(ax, (2.6, 1.8), (3.4, 1.55), REAL)
arrow(ax, (2.6, 1.05), (3.4, 1.35), FAKE, dashed=True)
ax.text(4.45, 1.8, "score high", color=REAL, fontsize=9, ha="left")
ax.text(4.45, 1.05, "score low", color=FAKE, fontsize=9, ha="left")
ax.text(
    2.5,
    0.25,
    "near neighbours weigh more: $(d_{ij}+1)^{-2}$; 16 sampled per site",
    ha="center",
    fontsize=8,
    color=INK,
)

# ----------------------------------------------------------------- global
ax = right
ax.set_title("Global objective: does a crystal's code know its sites?", fontsize=11)
crystal(ax, 0.6, 3.2, "AB")
box(ax, 2.0, 3.2, 1.0, 0.5, "encoder", CODE)
box(ax, 3.55, 3.2, 1.2, 0.5, "crystal code $g$", "#6d597a")
arrow(ax, (0.95, 3.2), (1.5, 3.2))
arrow(ax, (2.5, 3.2), (2.95, 3.2))

box(ax, 1.35, 2.05, 2.5, 0.45, r"codes $\ell_i$ of its own sites", REAL, 8)
box(ax, 1.35, 1.4, 2.5, 0.45, "codes of another crystal's sites", FAKE, 8)
box(
    ax,
    1.35,
    0.6,
    2.5,
    0.75,
    "codes of sites re-encoded from a\ncorrupted copy: wrong species,\n"
    "wrong geometry, shuffled neighbours",
    FAKE,
    7.5,
)
box(ax, 3.9, 1.35, 1.0, 0.5, "global critic", CODE)
arrow(ax, (3.6, 2.95), (3.85, 1.6))
arrow(ax, (2.6, 2.05), (3.4, 1.5), REAL)
arrow(ax, (2.6, 1.4), (3.4, 1.35), FAKE, dashed=True)
arrow(ax, (2.6, 0.6), (3.4, 1.2), FAKE, dashed=True)
ax.text(4.45, 1.7, "score high", color=REAL, fontsize=9, ha="left")
ax.text(4.45, 1.0, "score low", color=FAKE, fontsize=9, ha="left")

fig.text(
    0.5,
    0.02,
    "Encoder and critics train together: the critics can only tell real pairs from fake ones "
    "if the codes carry the information.",
    ha="center",
    fontsize=9,
    style="italic",
)
fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.07, wspace=0.05)
