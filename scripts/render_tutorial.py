"""Renders docs/tutorial.py (jupytext percent format) to docs/tutorial.ipynb.

  python scripts/render_tutorial.py                  # writes docs/tutorial.ipynb
  python scripts/render_tutorial.py --output x.ipynb

The .py file is the source: edit it, then render (tests/test_tutorial.py fails
when the two differ). The notebook is written without outputs; the figures
of a full run are the docs/tutorial_*.png files beside it.
"""

import argparse
import os

import jupytext

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(REPO_ROOT, 'docs', 'tutorial.py')
NOTEBOOK = os.path.join(REPO_ROOT, 'docs', 'tutorial.ipynb')


def render(source: str = SOURCE, output: str = NOTEBOOK) -> str:
  """Writes the notebook of `source` to `output`; returns output."""
  notebook = jupytext.read(source, fmt='py:percent')
  jupytext.write(notebook, output, fmt='ipynb')
  return output


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--source', default=SOURCE)
  parser.add_argument('--output', default=NOTEBOOK)
  args = parser.parse_args()
  print('wrote', render(args.source, args.output))


if __name__ == '__main__':
  main()
