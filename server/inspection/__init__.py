"""What an inspection is made of: cases, checklists, snapshots, annotations, conclusions."""
