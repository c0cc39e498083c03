"""Admin pages of the iTero lab connector."""
