"""fabstack: deploy a scaling roadmap to real hosts."""
