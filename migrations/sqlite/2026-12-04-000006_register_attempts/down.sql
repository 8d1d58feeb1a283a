DROP TABLE register_attempts;
