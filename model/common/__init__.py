"""What every layer of the package shares: config checks, atomic files, safe pickles, the device."""
