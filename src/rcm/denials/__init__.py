"""Denials: classified from an 835 by CARC/RARC, worked to a corrected claim or an appeal, counted."""
