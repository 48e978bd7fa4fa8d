import sys

from model.synth.generator import main

sys.exit(main())
